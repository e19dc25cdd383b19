// CPU stand-ins for the CUDA built-ins that minicnn's kernels use; prepended to each
// kernel source by kernels.py, which compiles the result with the system C++ compiler.
//
// A launch runs every thread of the grid one after another on one CPU thread. Kernels
// that call __syncthreads() run each thread of a block as a fiber (ucontext): every
// fiber runs up to the barrier, then all of them resume, so shared memory and barriers
// behave as on a GPU. Atomics are plain read-modify-writes (nothing runs concurrently).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>
#include <ucontext.h>

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };
static uint3 threadIdx, blockIdx;
static dim3 blockDim, gridDim;

#define __global__
#define __device__ static
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() __emu_syncthreads(__LINE__)

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

// CUDA's min/max: fmin/fmax (NaN loses) for floating types, the usual comparison otherwise.
template <class A, class B>
static inline typename std::common_type<A, B>::type min(A a, B b) {
  using C = typename std::common_type<A, B>::type;
  if constexpr (std::is_floating_point<C>::value) return std::fmin((C)a, (C)b);
  else return (C)b < (C)a ? (C)b : (C)a;
}
template <class A, class B>
static inline typename std::common_type<A, B>::type max(A a, B b) {
  using C = typename std::common_type<A, B>::type;
  if constexpr (std::is_floating_point<C>::value) return std::fmax((C)a, (C)b);
  else return (C)a < (C)b ? (C)b : (C)a;
}

static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
static inline long long __double_as_longlong(double v) { long long i; memcpy(&i, &v, 8); return i; }
static inline float __int_as_float(int v) { float f; memcpy(&f, &v, 4); return f; }
static inline int __float_as_int(float v) { int i; memcpy(&i, &v, 4); return i; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <class T> static inline T __ldg(const T* p) { return *p; }

// Atomics: threads never run at the same time here, so a plain update is exact.
template <class T> static inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class T> static inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T> static inline T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <class T> static inline T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <class T> static inline T atomicCAS(T* p, T cmp, T v) {
  T old = *p; if (old == cmp) *p = v; return old;
}

// ---- launching: one fiber per thread of a block when the kernel has barriers
enum { RUNNABLE, AT_BARRIER, EXITED };
struct EmuFiber { ucontext_t ctx; int state; int line; uint3 tid; };
static EmuFiber* emu_fibers = nullptr;
static int emu_current = 0;
static ucontext_t emu_main;
static void (*emu_body)() = nullptr;

static void __emu_syncthreads(int line) {
  if (emu_fibers == nullptr) return;  // unreachable: kernels.py gives barrier kernels fibers
  EmuFiber* f = &emu_fibers[emu_current];
  f->state = AT_BARRIER;
  f->line = line;
  swapcontext(&f->ctx, &emu_main);
}

static void emu_fiber_entry() {
  emu_body();
  emu_fibers[emu_current].state = EXITED;  // then uc_link returns to emu_main
}

// Run one block of fibers to completion; 0, or 1 with a message in err.
static int emu_run_block_fibers(unsigned n, char* stacks, size_t stack_size, char* err) {
  for (unsigned i = 0; i < n; ++i) {
    EmuFiber* f = &emu_fibers[i];
    f->tid = {i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
    f->state = RUNNABLE;
    getcontext(&f->ctx);
    f->ctx.uc_stack.ss_sp = stacks + (size_t)i * stack_size;
    f->ctx.uc_stack.ss_size = stack_size;
    f->ctx.uc_link = &emu_main;
    makecontext(&f->ctx, emu_fiber_entry, 0);
  }
  for (;;) {
    for (unsigned i = 0; i < n; ++i) {
      if (emu_fibers[i].state != RUNNABLE) continue;
      emu_current = (int)i;
      threadIdx = emu_fibers[i].tid;
      swapcontext(&emu_main, &emu_fibers[i].ctx);
    }
    unsigned waiting = 0, exited = 0, first_wait = 0, first_exit = 0;
    for (unsigned i = 0; i < n; ++i) {
      if (emu_fibers[i].state == AT_BARRIER && waiting++ == 0) first_wait = i;
      if (emu_fibers[i].state == EXITED && exited++ == 0) first_exit = i;
    }
    if (waiting == 0) return 0;
    if (exited) {
      snprintf(err, 512, "block (%u,%u,%u): thread %u exited while thread %u waits at the "
               "__syncthreads() on line %d (a barrier not reached by the whole block)",
               blockIdx.x, blockIdx.y, blockIdx.z, first_exit, first_wait,
               emu_fibers[first_wait].line);
      return 1;
    }
    for (unsigned i = 0; i < n; ++i) {
      if (emu_fibers[i].line != emu_fibers[first_wait].line) {
        snprintf(err, 512, "block (%u,%u,%u): threads wait at different __syncthreads() "
                 "(lines %d and %d)", blockIdx.x, blockIdx.y, blockIdx.z,
                 emu_fibers[first_wait].line, emu_fibers[i].line);
        return 1;
      }
      emu_fibers[i].state = RUNNABLE;
    }
  }
}

// dims: grid x, y, z then block x, y, z. Returns 0, or 1 with a message in err.
static int emu_run(void (*body)(), const unsigned* dims, int fibers, char* err) {
  gridDim = {dims[0], dims[1], dims[2]};
  blockDim = {dims[3], dims[4], dims[5]};
  emu_body = body;
  unsigned n = blockDim.x * blockDim.y * blockDim.z;
  const size_t stack_size = 64 * 1024;
  char* stacks = nullptr;
  if (fibers) {
    stacks = (char*)malloc(stack_size * n);
    emu_fibers = (EmuFiber*)malloc(sizeof(EmuFiber) * n);
    if (!stacks || !emu_fibers) {
      snprintf(err, 512, "out of memory for %u fibers", n);
      free(stacks); free(emu_fibers); emu_fibers = nullptr;
      return 1;
    }
  }
  int status = 0;
  for (unsigned bz = 0; bz < gridDim.z && !status; ++bz)
    for (unsigned by = 0; by < gridDim.y && !status; ++by)
      for (unsigned bx = 0; bx < gridDim.x && !status; ++bx) {
        blockIdx = {bx, by, bz};
        if (fibers) {
          status = emu_run_block_fibers(n, stacks, stack_size, err);
          continue;
        }
        for (unsigned tz = 0; tz < blockDim.z; ++tz)
          for (unsigned ty = 0; ty < blockDim.y; ++ty)
            for (unsigned tx = 0; tx < blockDim.x; ++tx) {
              threadIdx = {tx, ty, tz};
              body();
            }
      }
  free(stacks);
  free(emu_fibers);
  emu_fibers = nullptr;
  return status;
}

// ---- the argument list of a kernel, unpacked from CUDA's void** convention
static void** emu_args = nullptr;

template <class P> static constexpr char emu_kind() {
  using V = typename std::remove_cv<typename std::remove_pointer<P>::type>::type;
  char k = std::is_same<V, bool>::value ? 'b'
         : std::is_floating_point<V>::value ? 'f'
         : std::is_signed<V>::value ? 'i' : 'u';
  return std::is_pointer<P>::value ? (char)(k - 'a' + 'A') : k;  // upper case: a pointer
}
template <class P> static constexpr int emu_size() {
  using V = typename std::remove_pointer<P>::type;
  if constexpr (std::is_void<V>::value) return 0;
  else return (int)sizeof(V);
}

template <class F> struct EmuSignature;
template <class... P> struct EmuSignature<void (*)(P...)> {
  static constexpr int n = sizeof...(P);
  template <auto F, size_t... I> static void call(std::index_sequence<I...>) {
    F(*(P*)emu_args[I]...);
  }
  static void describe(char* kinds, int* sizes) {
    int i = 0;
    ((kinds[i] = emu_kind<P>(), sizes[i] = emu_size<P>(), ++i), ...);
    (void)kinds; (void)sizes; (void)i;
  }
};
template <auto F> static void emu_body_of() {
  using S = EmuSignature<decltype(F)>;
  S::template call<F>(std::make_index_sequence<S::n>{});
}

// EMU_EXPORT(name, fibers): the C entry points kernels.py calls through ctypes.
#define EMU_EXPORT(name, fibers)                                                         \
  extern "C" int __emu_launch_##name(const unsigned* dims, void** args, char* err) {    \
    emu_args = args;                                                                     \
    return emu_run(&emu_body_of<&name>, dims, fibers, err);                              \
  }                                                                                      \
  extern "C" int __emu_describe_##name(char* kinds, int* sizes) {                        \
    EmuSignature<decltype(&name)>::describe(kinds, sizes);                               \
    return EmuSignature<decltype(&name)>::n;                                             \
  }
