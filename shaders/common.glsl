// Shared declarations for every snlvk kernel.
#extension GL_EXT_control_flow_attributes : enable

// Every kernel's workgroup size is specialised at pipeline creation (ids 100..102).
layout(local_size_x_id = 100, local_size_y_id = 101, local_size_z_id = 102) in;

// acc + a.x*b.x + a.y*b.y + a.z*b.z + a.w*b.w as a chain of fmas in that order: the order
// in which the texel GEMM and convolution sum four reduction terms.
float fma4(vec4 a, vec4 b, float acc) { return fma(a.w, b.w, fma(a.z, b.z, fma(a.y, b.y, fma(a.x, b.x, acc)))); }
