// Peak arithmetic of one core in a register-only loop: 256- and 512-bit FMA, 512- and 256-bit
// vdpbf16ps (GFLOP/s, 2 per multiply-add). gcc -O3 bench/fma-peak.c -o /tmp/fma-peak && /tmp/fma-peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((target("avx2,fma"))) double fma256(long n){
  __m256 a[12]; __m256 b=_mm256_set1_ps(1.0001f), c=_mm256_set1_ps(0.9999f);
  for(int i=0;i<12;i++)a[i]=_mm256_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm256_fmadd_ps(a[i],b,c);}
  t=now()-t; float s=0; for(int i=0;i<12;i++){float v[8];_mm256_storeu_ps(v,a[i]);s+=v[0];}
  if(s==1234.5)printf("x");
  return n*12.0*16/t/1e9;
}
__attribute__((target("avx512f"))) double fma512(long n){
  __m512 a[12]; __m512 b=_mm512_set1_ps(1.0001f), c=_mm512_set1_ps(0.9999f);
  for(int i=0;i<12;i++)a[i]=_mm512_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],b,c);}
  t=now()-t; float s=0; for(int i=0;i<12;i++){s+=_mm512_reduce_add_ps(a[i]);}
  if(s==1234.5)printf("x");
  return n*12.0*32/t/1e9;
}
__attribute__((target("avx512f,avx512bf16,avx512vl"))) double bf512(long n){
  __m512 a[12]; __m512bh b=(__m512bh)_mm512_set1_epi32(0x3f803f80), c=(__m512bh)_mm512_set1_epi32(0x3f803f80);
  for(int i=0;i<12;i++)a[i]=_mm512_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm512_dpbf16_ps(a[i],b,c);}
  t=now()-t; float s=0; for(int i=0;i<12;i++){s+=_mm512_reduce_add_ps(a[i]);}
  if(s==1234.5)printf("x");
  return n*12.0*64/t/1e9;
}
__attribute__((target("avx512f,avx512bf16,avx512vl"))) double bf256(long n){
  __m256 a[12]; __m256bh b=(__m256bh)_mm256_set1_epi32(0x3f803f80), c=(__m256bh)_mm256_set1_epi32(0x3f803f80);
  for(int i=0;i<12;i++)a[i]=_mm256_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm256_dpbf16_ps(a[i],b,c);}
  t=now()-t; float s=0; for(int i=0;i<12;i++){float v[8];_mm256_storeu_ps(v,a[i]);s+=v[0];}
  if(s==1234.5)printf("x");
  return n*12.0*32/t/1e9;
}
int main(){ long n=20000000; for(int r=0;r<3;r++) printf("fma256 %.1f fma512 %.1f bf16x512 %.1f bf16x256 %.1f GFLOP/s\n",fma256(n),fma512(n),bf512(n),bf256(n)); }
