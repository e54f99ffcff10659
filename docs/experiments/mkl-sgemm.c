// MKL's sgemm inside libtorch_cpu.so, called directly, with MKL's own dispatch and with its vendor check answering Intel.
// L=Vae.Cli/bin/Release/net10.0/runtimes/linux-x64/native
// gcc -O2 docs/experiments/mkl-sgemm.c -o /tmp/sgemm -ldl && gcc -O2 -DINTERPOSE -rdynamic docs/experiments/mkl-sgemm.c -o /tmp/sgemm-intel -ldl
// OMP_NUM_THREADS=1 LD_LIBRARY_PATH=$L /tmp/sgemm $L/libtorch_cpu.so; OMP_NUM_THREADS=1 LD_LIBRARY_PATH=$L /tmp/sgemm-intel $L/libtorch_cpu.so
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef INTERPOSE
int mkl_serv_intel_cpu_true(void) { return 1; }
#endif
typedef void (*sgemm_t)(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*, const float*, const int*, const float*, float*, const int*);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc, char** argv){
  void* h = dlopen(argv[1], RTLD_NOW|RTLD_LOCAL);
  if(!h){printf("%s\n", dlerror()); return 1;}
  sgemm_t sgemm = (sgemm_t)dlsym(h, "sgemm_");
  void (*ver)(char*, int) = dlsym(h, "MKL_Get_Version_String");
  char buf[256]; ver(buf, 256); printf("%s\n", buf);
  int shapes[][3] = {{2048,2048,2048},{1000,500,784},{100,500,784},{5100,784,500}};
  for(int s=0;s<4;s++){
    int m=shapes[s][0], n=shapes[s][1], k=shapes[s][2];
    float *a=malloc(sizeof(float)*m*k), *b=malloc(sizeof(float)*k*n), *c=malloc(sizeof(float)*m*n);
    for(long i=0;i<(long)m*k;i++) a[i]=(i%7)*0.1f; for(long i=0;i<(long)k*n;i++) b[i]=(i%5)*0.1f;
    float one=1, zero=0;
    int reps = (int)(4e10/(2.0*m*n*k)); if(reps<3) reps=3;
    sgemm("N","N",&n,&m,&k,&one,b,&n,a,&k,&zero,c,&n);
    double t0=now();
    for(int r=0;r<reps;r++) sgemm("N","N",&n,&m,&k,&one,b,&n,a,&k,&zero,c,&n);
    double t=now()-t0;
    printf("%dx%dx%d: %.1f GFLOP/s\n", m,n,k, 2.0*m*n*k*reps/t/1e9);
    free(a);free(b);free(c);
  }
}
