// The machine's float32 FMA peak on one core: 12 independent AVX-512 (then AVX2) FMA chains.
// gcc -O3 -mavx512f -mfma docs/experiments/fma-peak.c -o /tmp/fma-peak && /tmp/fma-peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  long n=200000000;
  __m512 a[12]; __m512 b=_mm512_set1_ps(1.0000001f), c=_mm512_set1_ps(1e-7f);
  for(int i=0;i<12;i++) a[i]=_mm512_set1_ps(i);
  double t0=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],b,c); }
  double t=now()-t0; float s=0; for(int i=0;i<12;i++) s+=a[i][0];
  printf("avx512 fp32: %.1f GFLOP/s (%f)\n", n*12.0*16*2/t/1e9, s);
  __m256 a2[12]; __m256 b2=_mm256_set1_ps(1.0000001f), c2=_mm256_set1_ps(1e-7f);
  for(int i=0;i<12;i++) a2[i]=_mm256_set1_ps(i);
  t0=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a2[i]=_mm256_fmadd_ps(a2[i],b2,c2); }
  t=now()-t0; s=0; for(int i=0;i<12;i++) s+=a2[i][0];
  printf("avx2 fp32: %.1f GFLOP/s (%f)\n", n*12.0*8*2/t/1e9, s);
}
