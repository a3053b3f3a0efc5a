// ELEM / FETCH for kernels built twice (NAME.comp with VEC4 0, NAME4.comp with VEC4 1): a
// float per R32F texel, or a vec4 per RGBA32F texel with vec4 stores. The elementwise
// tensors are storage texel buffers declared with ELEM_FMT and read with imageLoad, which
// lavapipe compiles inline (a texelFetch is a call).
#if VEC4
#define ELEM vec4
#define ELEM_FMT rgba32f
#define FETCH(t, i) imageLoad(t, i)
#else
#define ELEM float
#define ELEM_FMT r32f
#define FETCH(t, i) imageLoad(t, i).x
#endif
