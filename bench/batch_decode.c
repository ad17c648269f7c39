/* Engine-level continuous-batching throughput: one decode step of 1, 2, 4, 8 sequences.
 * Build after `make`: cc -O2 -Iinclude bench/batch_decode.c build/src/{base,engine,engine/arch,tokenizer}/*.o \
 *   -lm -pthread -ljansson -lpcre2-8 -o build/bench/batch_decode && build/bench/batch_decode MODEL.gguf */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "tandem.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){char err[256];struct tandem_model*m;tandem_model_load(&m,argv[1],err,256);
 for(int S=1;S<=8;S*=2){struct tandem_ctx_params p=tandem_ctx_default_params();p.n_ctx=256;p.n_seq=S;p.n_threads=2;struct tandem_ctx*c;tandem_ctx_new(&c,m,&p,err,256);
  int32_t tok[8]={1,2,3,4,5,6,7,8};struct tandem_span sp[8];for(int s=0;s<S;s++)sp[s]=(struct tandem_span){.seq=s,.tokens=&tok[s],.n=1,.logits=true};
  tandem_decode_spans(c,sp,S);double t0=now();int steps=32;for(int i=0;i<steps;i++)tandem_decode_spans(c,sp,S);double dt=now()-t0;
  printf("seqs %d: %.1f tok/s aggregate (%.1f ms/step)\n",S,steps*S/dt,dt/steps*1e3);tandem_ctx_free(c);}
 return 0;}
