// ELEM / FETCH for kernels built twice (NAME.comp with VEC4 0, NAME4.comp with VEC4 1): a
// float per R32F texel fetch, or a vec4 per RGBA32F fetch with vec4 stores.
#if VEC4
#define ELEM vec4
#define FETCH(t, i) texelFetch(t, i)
#else
#define ELEM float
#define FETCH(t, i) texelFetch(t, i).x
#endif
