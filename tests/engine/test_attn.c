/* Attention kernels: every SIMD level agrees with the scalar reference. */
#include "test.h"

#include "base/cpu.h"
#include "base/fp16.h"
#include "engine/attn_kernels.h"

TEST(attn_qk_levels_match_scalar)
{
    const int hds[] = {8, 16, 64, 80, 128, 256, 40};
    uint32_t seed = 7;
    for (size_t h = 0; h < sizeof(hds) / sizeof(hds[0]); h++) {
        const int hd = hds[h], n_rows = 37;
        const size_t stride = (size_t)hd * 3;
        uint16_t *k = malloc(sizeof(uint16_t) * stride * n_rows), *q = malloc(sizeof(uint16_t) * hd);
        for (size_t i = 0; i < stride * n_rows; i++) {
            seed = seed * 1664525u + 1013904223u;
            k[i] = fp16_from_fp32(((int)(seed >> 9) % 2001 - 1000) / 250.0f);
        }
        double mag = 0;
        for (int d = 0; d < hd; d++) {
            seed = seed * 1664525u + 1013904223u;
            q[d] = fp16_from_fp32(((int)(seed >> 9) % 2001 - 1000) / 250.0f);
        }
        float ref[37], out[37];
        attn__qk_scalar(hd, n_rows, k, stride, q, ref);
        for (int level = 1; level <= cpu_level(); level++) {
            attn_qk_at(level)(hd, n_rows, k, stride, q, out);
            for (int i = 0; i < n_rows; i++) {
                mag = 0;
                for (int d = 0; d < hd; d++)
                    mag += fabs(fp16_to_fp32(k[i * stride + d]) * fp16_to_fp32(q[d]));
                if (fabs(out[i] - ref[i]) > 1e-6 * mag + 1e-6)
                    test__fail(__FILE__, __LINE__, "hd %d level %d row %d: %g vs %g", hd, level,
                               i, out[i], ref[i]);
            }
        }
        free(k);
        free(q);
    }
}
