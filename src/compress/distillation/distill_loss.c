/* distill_loss.c - the distillers' pair losses (mse, kl) and the adapter's forward/backward. */
#include "distill_loss.h"

#include <string.h>

#include "../../nn/loss.h"
#include "../../tensor/blas.h"

sw_status sw_distill_method_from_name(const char *name, sw_distill_method *out) {
    if (strcmp(name, "mse") == 0) {
        *out = SW_DISTILL_MSE;
        return SW_OK;
    }
    if (strcmp(name, "kl") == 0) {
        *out = SW_DISTILL_KL;
        return SW_OK;
    }
    return SW_FAIL(SW_ERR_NOT_FOUND, "\"%s\" is not a distillation method (\"mse\" or \"kl\")",
                   name);
}

const char *sw_distill_method_name(sw_distill_method m) {
    return m == SW_DISTILL_KL ? "kl" : "mse";
}

sw_status sw_distill_pair_loss(sw_distill_method method, const sw_tensor *s, const sw_tensor *t,
                               float grad_scale, double *loss, sw_tensor *ds) {
    /* Both losses live in nn/loss.c, where they are checked against PyTorch: the distiller
     * only chooses one and passes the weight through as the gradient's scale. */
    if (method == SW_DISTILL_KL)
        return sw_loss_kl_div(s, t, SW_DISTILL_KL_TEMPERATURE, grad_scale, loss, ds);
    return sw_loss_mse(s, t, grad_scale, loss, ds, NULL);
}

void sw_distill_adapter_forward(const float *s, int rows, int d_in, const float *w, const float *b,
                                int d_out, float *a) {
    /* Bias first, then a += s W^T in one GEMM (beta = 1). */
    for (int r = 0; r < rows; r++) memcpy(a + (size_t)r * d_out, b, (size_t)d_out * sizeof *a);
    sw_sgemm(false, true, rows, d_out, d_in, 1.0f, s, d_in, w, d_in, 1.0f, a, d_out);
}

void sw_distill_adapter_backward(const float *s, int rows, int d_in, const float *w, int d_out,
                                 const float *da, float *ds, float *dw, float *db) {
    /* ds[rows, d_in] = da[rows, d_out] W[d_out, d_in] */
    sw_sgemm(false, false, rows, d_in, d_out, 1.0f, da, d_out, w, d_in, 0.0f, ds, d_in);
    /* dw[d_out, d_in] += da^T[d_out, rows] s[rows, d_in] */
    sw_sgemm(true, false, d_out, d_in, rows, 1.0f, da, d_out, s, d_in, 1.0f, dw, d_in);
    for (int r = 0; r < rows; r++) {
        const float *g = da + (size_t)r * d_out;
        for (int j = 0; j < d_out; j++) db[j] += g[j];
    }
}
