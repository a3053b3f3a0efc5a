#version 450
#extension GL_GOOGLE_include_directive : require
#define VEC4 0
#include "bn_act_backward.glsl"
