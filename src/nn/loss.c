/* loss.c - cross-entropy, mean squared error and distillation KL, with their gradients.
 *
 * Every loss is a mean, computed in double; gradients are written (not accumulated), scaled by
 * the caller's `scale` (a loss weight), as loss.h documents. Softmax-based losses subtract each
 * row's maximum before exponentiating, so large logits never overflow.
 */
#include "loss.h"

#include <math.h>
#include <stddef.h>

/* Rows and classes of a logits tensor: classes = last dim, rows = the rest. */
static sw_status loss_rows(const sw_tensor *t, const char *what, int *rows, int *classes) {
    if (t->shape.ndim < 1 || t->numel == 0) {
        char buf[64];
        return SW_FAIL(SW_ERR_SHAPE, "%s must be a non-empty [N, C] tensor, got %s", what,
                       sw_shape_format(&t->shape, buf, sizeof buf));
    }
    *classes = t->shape.dims[t->shape.ndim - 1];
    *rows = (int)(t->numel / (size_t)*classes);
    return SW_OK;
}

static sw_status loss_same_shape(const sw_tensor *a, const sw_tensor *b, const char *what_a,
                                 const char *what_b) {
    if (!sw_shape_equal(&a->shape, &b->shape)) {
        char x[64], y[64];
        return SW_FAIL(SW_ERR_SHAPE, "%s has shape %s but %s has %s", what_a,
                       sw_shape_format(&a->shape, x, sizeof x), what_b,
                       sw_shape_format(&b->shape, y, sizeof y));
    }
    return SW_OK;
}

/* log(sum(exp(z / t))) of one row of length c, stably: m + log(sum(exp(z/t - m))). */
static double row_logsumexp(const float *z, int c, double t) {
    double m = -INFINITY;
    for (int j = 0; j < c; j++)
        if (z[j] / t > m) m = z[j] / t;
    double s = 0.0;
    for (int j = 0; j < c; j++) s += exp(z[j] / t - m);
    return m + log(s);
}

/* mean over rows of -log softmax(z)[y] = logsumexp(z) - z[y]; d/dz = (softmax(z) - onehot(y))
 * / N. Labels are all checked before anything is written, so a bad label leaves dlogits as it
 * was. */
sw_status sw_loss_cross_entropy(const sw_tensor *logits, const int *labels, float scale,
                                double *loss, sw_tensor *dlogits) {
    int rows, c;
    if (logits->shape.ndim != 2) {
        char buf[64];
        return SW_FAIL(SW_ERR_SHAPE, "cross-entropy expects logits [N, C], got %s",
                       sw_shape_format(&logits->shape, buf, sizeof buf));
    }
    SW_TRY(loss_rows(logits, "cross-entropy logits", &rows, &c));
    if (dlogits) SW_TRY(loss_same_shape(dlogits, logits, "the logits gradient", "the logits"));
    for (int i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return SW_FAIL(SW_ERR_ARG, "cross-entropy: label %d of row %d is outside [0, %d)",
                           labels[i], i, c);
    double total = 0.0;
    const double g = (double)scale / rows; /* d mean / d row loss, times the weight */
    for (int i = 0; i < rows; i++) {
        const float *z = logits->data + (size_t)i * c;
        /* -log softmax(z)[y] = logsumexp(z) - z[y] */
        double lse = row_logsumexp(z, c, 1.0);
        total += lse - z[labels[i]];
        if (dlogits) {
            /* d/dz_j = softmax_j - [j == y] */
            float *d = dlogits->data + (size_t)i * c;
            for (int j = 0; j < c; j++) {
                double p = exp(z[j] - lse) - (j == labels[i] ? 1.0 : 0.0);
                d[j] = (float)(g * p);
            }
        }
    }
    *loss = total / rows;
    return SW_OK;
}

/* mean((p - t)^2) over all n values; d/dp = 2 (p - t) / n and d/dt = -d/dp (both scaled). */
sw_status sw_loss_mse(const sw_tensor *pred, const sw_tensor *target, float scale, double *loss,
                      sw_tensor *dpred, sw_tensor *dtarget) {
    SW_TRY(loss_same_shape(pred, target, "MSE prediction", "target"));
    if (dpred) SW_TRY(loss_same_shape(dpred, pred, "the prediction gradient", "the prediction"));
    if (dtarget) SW_TRY(loss_same_shape(dtarget, pred, "the target gradient", "the prediction"));
    if (pred->numel == 0) return SW_FAIL(SW_ERR_SHAPE, "MSE of an empty tensor");
    const size_t n = pred->numel;
    const double g = 2.0 * (double)scale / (double)n; /* d mean(d^2) / d pred = 2 d / n */
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred->data[i] - target->data[i];
        total += d * d;
        if (dpred) dpred->data[i] = (float)(g * d);
        if (dtarget) dtarget->data[i] = (float)(-g * d);
    }
    *loss = total / (double)n;
    return SW_OK;
}

/* NNI's distillation loss: with p = softmax(t/T) and q = softmax(s/T) per row,
 *   loss = T^2 * sum_rows sum_j p_j (log p_j - log q_j) / N     (kl_div "batchmean", N = dim 0)
 * and d loss / d s_j = T^2 * (q_j - p_j) / (T N) = T (q_j - p_j) / N. The teacher gets no
 * gradient: it is a constant target. */
sw_status sw_loss_kl_div(const sw_tensor *student, const sw_tensor *teacher, float temperature,
                         float scale, double *loss, sw_tensor *dstudent) {
    int rows, c;
    SW_TRY(loss_same_shape(student, teacher, "student logits", "teacher logits"));
    if (dstudent)
        SW_TRY(loss_same_shape(dstudent, student, "the student gradient", "the student logits"));
    SW_TRY(loss_rows(student, "distillation logits", &rows, &c));
    if (!(temperature > 0.0f) || !isfinite(temperature))
        return SW_FAIL(SW_ERR_ARG, "distillation temperature must be positive, got %g",
                       (double)temperature);
    const double t = temperature;
    const int batch = student->shape.dims[0]; /* "batchmean" divides by dim 0, not by rows */
    const double g = (double)scale * t / batch;
    double total = 0.0;
    for (int i = 0; i < rows; i++) {
        const float *s = student->data + (size_t)i * c;
        const float *u = teacher->data + (size_t)i * c;
        double lse_s = row_logsumexp(s, c, t), lse_u = row_logsumexp(u, c, t);
        for (int j = 0; j < c; j++) {
            double log_p = u[j] / t - lse_u; /* teacher log-probability */
            double log_q = s[j] / t - lse_s; /* student log-probability */
            double p = exp(log_p);
            /* p log(p / q); a zero-probability class contributes nothing (0 log 0 = 0) */
            if (p > 0.0) total += p * (log_p - log_q);
            /* d/ds_j of T^2 * KL = T^2 * (q_j - p_j) / T */
            if (dstudent) dstudent->data[(size_t)i * c + j] = (float)(g * (exp(log_q) - p));
        }
    }
    *loss = t * t * total / batch;
    return SW_OK;
}

/* Accuracy's numerator; labels outside [0, C) simply never match. */
int sw_count_correct(const sw_tensor *logits, const int *labels) {
    if (logits->shape.ndim < 1 || logits->numel == 0) return 0;
    const int c = logits->shape.dims[logits->shape.ndim - 1];
    const int rows = (int)(logits->numel / (size_t)c);
    int correct = 0;
    for (int i = 0; i < rows; i++) {
        const float *z = logits->data + (size_t)i * c;
        int best = 0;
        for (int j = 1; j < c; j++)
            if (z[j] > z[best]) best = j; /* strict: the first of equal maxima wins */
        correct += best == labels[i];
    }
    return correct;
}
