/* test_distill.c - the distillers: pair losses on hand-computed values, gradients of the whole
 * fused loss by finite differences, NNI's golden fixtures, fusion with pruners, config errors. */
#include <math.h>

#include "test_compress_models.h"

#include "compress/compressor.h"
#include "compress/distillation/distillers.h"
#include "compress/pruner.h"
#include "compress/pruning/pruners.h"
#include "data/dataset.h"
#include "nn/loss.h"
#include "train/evaluator.h"

/* ---- small models and data ---------------------------------------------------------------- */

/* flatten -> Linear(in, widths[0]) -> [ReLU] -> Linear -> ... on [1, 1, in] inputs; Linear i
 * is called names[i], the ReLUs "relu", "relu2", ... (the golden fixtures' Sequential). */
static sw_model *mlp(int in, int n, const int *widths, const char *const *names, bool relu) {
    sw_model *m = NULL;
    sw_shape s = sw_shape_3d(1, 1, in);
    CHECK_OK(sw_model_new("mlp", &s, &m));
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    tm_add(m, "flatten", SW_LAYER_FLATTEN, &hp, "input", NULL);
    const char *prev = "flatten";
    int width = in;
    char relu_names[4][16];
    for (int i = 0; i < n; i++) {
        hp = tm_linear(width, widths[i]);
        tm_add(m, names[i], SW_LAYER_LINEAR, &hp, prev, NULL);
        prev = names[i];
        width = widths[i];
        if (relu && i + 1 < n) {
            snprintf(relu_names[i], sizeof relu_names[i], i == 0 ? "relu" : "relu%d", i + 1);
            hp = sw_layer_hparams_default(SW_LAYER_RELU);
            tm_add(m, relu_names[i], SW_LAYER_RELU, &hp, prev, NULL);
            prev = relu_names[i];
        }
    }
    CHECK_OK(sw_model_finalize(m));
    return m;
}

/* An in-memory dataset of n [c, h, w] examples with the given values (or uniform noise) and
 * labels (or i % classes). */
static sw_dataset *make_dataset(int n, int c, int h, int w, int classes, const float *images,
                                const float *labels, uint64_t seed) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    ds->n = n;
    ds->channels = c, ds->height = h, ds->width = w;
    ds->n_classes = classes;
    ds->images = malloc((size_t)n * per * sizeof(float));
    ds->labels = malloc((size_t)n);
    if (images) {
        memcpy(ds->images, images, (size_t)n * per * sizeof(float));
    } else {
        sw_shape s = sw_shape_1d((int)((size_t)n * per));
        sw_tensor v = sw_tensor_view(ds->images, &s);
        sw_test_fill_uniform(&v, seed, -1, 1);
    }
    for (int i = 0; i < n; i++) ds->labels[i] = (uint8_t)(labels ? (int)labels[i] : i % classes);
    snprintf(ds->name, sizeof ds->name, "tiny");
    return ds;
}

static void free_dataset(sw_dataset *ds) {
    free(ds->images);
    free(ds->labels);
    free(ds);
}

/* Plain SGD at `lr`, constant schedule, no evaluation: steps that are easy to predict. */
static sw_train_config plain_sgd(float lr, int batch) {
    sw_train_config cfg = sw_train_config_default();
    cfg.batch_size = batch;
    cfg.optim = sw_optim_config_default(SW_OPTIM_SGD);
    cfg.optim.lr = lr;
    cfg.optim.momentum = 0;
    cfg.optim.nesterov = false;
    cfg.optim.weight_decay = 0;
    cfg.lr = (sw_lr_schedule){.kind = SW_LR_CONSTANT};
    cfg.eval_every_epoch = 0;
    return cfg;
}

/* Records every STEP event's loss and terms. */
typedef struct step_log {
    int n;
    double loss[256];
    int n_terms[256];
    char names[256][SW_METRIC_MAX_TERMS][16];
    double terms[256][SW_METRIC_MAX_TERMS];
} step_log;

static void step_listener(void *ctx, const sw_metric_event *e) {
    step_log *log = ctx;
    if (e->kind != SW_METRIC_STEP || log->n >= 256) return;
    int k = log->n++;
    log->loss[k] = e->loss;
    log->n_terms[k] = e->n_terms;
    for (int t = 0; t < e->n_terms; t++) {
        snprintf(log->names[k][t], sizeof log->names[k][t], "%s", e->term_names[t]);
        log->terms[k][t] = e->term_values[t];
    }
}

/* The value of term `name` in step k, failing when absent. */
static double step_term(const step_log *log, int k, const char *name) {
    for (int t = 0; t < log->n_terms[k]; t++)
        if (strcmp(log->names[k][t], name) == 0) return log->terms[k][t];
    fail_msg("step %d has no term \"%s\"", k, name);
    return 0;
}

static void assert_rel(double got, double want, double rtol, const char *what) {
    if (fabs(got - want) > rtol * fabs(want) + 1e-12)
        fail_msg("%s: got %.9g, want %.9g (rtol %g)", what, got, want, rtol);
}

/* ---- pair losses -------------------------------------------------------------------------- */

/* mse = mean((s - t)^2) with gradient 2 (s - t) / n times the scale. */
static void test_distill_mse_hand(void **state) {
    (void)state;
    float sd[4] = {1, 2, 3, 4}, td[4] = {0, 2, 1, 4}, gd[4];
    sw_shape sh = sw_shape_2d(2, 2);
    sw_tensor s = sw_tensor_view(sd, &sh), t = sw_tensor_view(td, &sh), g = sw_tensor_view(gd, &sh);
    double loss = 0;
    CHECK_OK(sw_distill_pair_loss(SW_DISTILL_MSE, &s, &t, 0.5f, &loss, &g));
    /* (1 + 0 + 4 + 0) / 4 */
    assert_float_equal(loss, 1.25, 1e-12);
    /* 0.5 * 2 * (1, 0, 2, 0) / 4 */
    float want[4] = {0.25f, 0, 0.5f, 0};
    for (int i = 0; i < 4; i++) assert_float_equal(gd[i], want[i], 1e-7);
}

/* kl = 4 * sum(p (log p - log q)) / N with p = softmax(t/2), q = softmax(s/2); the value and
 * gradient 2 (q - p) / N were computed by hand (in double) for these rows. */
static void test_distill_kl_temperature_hand(void **state) {
    (void)state;
    float sd[6] = {1, -2, 0.5f, 0, 3, -1}, td[6] = {2, 0, -1, 1, 1, 1}, gd[6];
    sw_shape sh = sw_shape_2d(2, 3);
    sw_tensor s = sw_tensor_view(sd, &sh), t = sw_tensor_view(td, &sh), g = sw_tensor_view(gd, &sh);
    double loss = 0;
    CHECK_OK(sw_distill_pair_loss(SW_DISTILL_KL, &s, &t, 1.0f, &loss, &g));
    assert_float_equal(loss, 1.088919924750273, 1e-6);
    const double want[6] = {-0.1290139893985474, -0.11976642657194625, 0.2487804159704938,
                            -0.1690817057082455, 0.4027913909792606,   -0.23370968527101502};
    for (int i = 0; i < 6; i++) assert_float_equal(gd[i], want[i], 1e-6);
    /* A teacher equal to the student costs nothing and pulls nowhere. */
    CHECK_OK(sw_distill_pair_loss(SW_DISTILL_KL, &s, &s, 1.0f, &loss, &g));
    assert_float_equal(loss, 0, 1e-9);
    for (int i = 0; i < 6; i++) assert_float_equal(gd[i], 0, 1e-7);
    /* Shapes must agree; the message shows both. */
    sw_shape other = sw_shape_2d(3, 2);
    sw_tensor t2 = sw_tensor_view(td, &other);
    assert_int_equal(sw_distill_pair_loss(SW_DISTILL_KL, &s, &t2, 1.0f, &loss, NULL), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "[3, 2]"));
}

/* The adapter a = s W^T + b and its backward agree with central finite differences of
 * f = sum(a * r) for a fixed random r. */
static void test_distill_adapter_gradients_fd(void **state) {
    (void)state;
    enum { ROWS = 3, DI = 4, DO = 5 };
    float s[ROWS * DI], w[DO * DI], b[DO], r[ROWS * DO], a[ROWS * DO];
    float ds[ROWS * DI], dw[DO * DI] = {0}, db[DO] = {0};
    sw_shape sh;
    sw_tensor v;
    sh = sw_shape_1d(ROWS * DI), v = sw_tensor_view(s, &sh), sw_test_fill_uniform(&v, 1, -1, 1);
    sh = sw_shape_1d(DO * DI), v = sw_tensor_view(w, &sh), sw_test_fill_uniform(&v, 2, -1, 1);
    sh = sw_shape_1d(DO), v = sw_tensor_view(b, &sh), sw_test_fill_uniform(&v, 3, -1, 1);
    sh = sw_shape_1d(ROWS * DO), v = sw_tensor_view(r, &sh), sw_test_fill_uniform(&v, 4, -1, 1);
    sw_distill_adapter_backward(s, ROWS, DI, w, DO, r, ds, dw, db);
    float *params[3] = {s, w, b}, *grads[3] = {ds, dw, db};
    int sizes[3] = {ROWS * DI, DO * DI, DO};
    const double eps = 1e-2;
    for (int p = 0; p < 3; p++) {
        for (int i = 0; i < sizes[p]; i++) {
            double f[2];
            float keep = params[p][i];
            for (int side = 0; side < 2; side++) {
                params[p][i] = keep + (float)(side ? -eps : eps);
                sw_distill_adapter_forward(s, ROWS, DI, w, b, DO, a);
                f[side] = 0;
                for (int k = 0; k < ROWS * DO; k++) f[side] += (double)a[k] * r[k];
            }
            params[p][i] = keep;
            double numeric = (f[0] - f[1]) / (2 * eps);
            if (fabs(numeric - grads[p][i]) > 1e-4 + 1e-3 * fabs(numeric))
                fail_msg("adapter tensor %d [%d]: analytic %g, numeric %g", p, i,
                         (double)grads[p][i], numeric);
        }
    }
}

/* ---- the whole fused loss: values by hand, gradients by finite differences ----------------- */

typedef struct fd_setup {
    sw_dataset *ds;
    sw_evaluator ev;
    sw_model *student, *teacher, *teacher2;
    sw_wrapper_set *ws;
    sw_compressor *outer, *inner; /* inner is newer (NULL when one distiller) */
    step_log log;
} fd_setup;

/* Student fc1 -> fc2 (no ReLU: the loss is smooth, so finite differences are exact to float
 * rounding), on 8 examples of [16, 1, 1] in one batch, SGD at lr 0 (a step changes nothing).
 * `adaptive`: the teacher's fc1 is wider and Adaptive1d adapts it; `nested`: a second
 * distiller (fc1 mse, lambda 0.2 on the task) is built from the first (fc2 kl). */
static void fd_build(fd_setup *f, bool adaptive, bool nested) {
    memset(f, 0, sizeof *f);
    const char *names[2] = {"fc1", "fc2"};
    int stw[2] = {12, 5}, tw[2] = {adaptive ? 20 : 12, 5};
    f->student = mlp(16, 2, stw, names, false);
    f->teacher = mlp(16, 2, tw, names, false);
    tm_fill_params(f->student, 11);
    tm_fill_params(f->teacher, 23);
    f->ds = make_dataset(8, 1, 1, 16, 5, NULL, NULL, 5);
    sw_train_config cfg = plain_sgd(0.0f, 8);
    CHECK_OK(sw_evaluator_init(&f->ev, f->ds, NULL, &cfg));
    CHECK_OK(sw_metric_bus_add(&f->ev.bus, step_listener, &f->log));
    CHECK_OK(sw_wrapper_set_new(f->student, &f->ws));
    if (!nested) {
        cJSON *c =
            tm_json("[{\"op_names\": [\"fc1\"], \"lambda\": 0.5},"
                    " {\"op_names\": [\"fc2\"], \"lambda\": 0.9, \"apply_method\": \"kl\"}]");
        if (adaptive)
            CHECK_OK(sw_distiller_adaptive1d_new(f->ws, c, &f->ev, f->teacher, NULL, NULL, 0.3,
                                                 &f->outer));
        else
            CHECK_OK(
                sw_distiller_dynamic_new(f->ws, c, &f->ev, f->teacher, NULL, NULL, 0.3, &f->outer));
        cJSON_Delete(c);
        return;
    }
    /* A second teacher for the inner distiller: distillers need not share one. */
    f->teacher2 = mlp(16, 2, tw, names, false);
    tm_fill_params(f->teacher2, 37);
    cJSON *c1 = tm_json("[{\"op_names\": [\"fc2\"], \"lambda\": 0.9, \"apply_method\": \"kl\"}]");
    cJSON *c2 = tm_json("[{\"op_names\": [\"fc1\"], \"lambda\": 0.5}]");
    CHECK_OK(sw_distiller_dynamic_new(f->ws, c1, &f->ev, f->teacher, NULL, NULL, 0.5, &f->outer));
    CHECK_OK(sw_distiller_dynamic_from_compressor(f->outer, c2, f->teacher2, NULL, NULL, 0.2, NULL,
                                                  &f->inner));
    cJSON_Delete(c1);
    cJSON_Delete(c2);
}

static void fd_free(fd_setup *f) {
    sw_compressor_free(f->inner);
    sw_compressor_free(f->outer);
    sw_wrapper_set_release(f->ws);
    sw_evaluator_deinit(&f->ev);
    sw_model_free(f->student);
    sw_model_free(f->teacher);
    sw_model_free(f->teacher2);
    free_dataset(f->ds);
}

/* One step at lr 0 through the newest compressor: the total loss at the current weights. */
static double fd_loss(fd_setup *f) {
    CHECK_OK(sw_compressor_compress(f->inner ? f->inner : f->outer, 1, -1));
    return f->log.loss[f->log.n - 1];
}

/* Output of `node` of `m` on the whole dataset (eval-mode forward), copied. */
static sw_tensor *node_output(sw_model *m, const sw_dataset *ds, const char *node) {
    sw_shape xs = sw_shape_4d(ds->n, ds->channels, ds->height, ds->width);
    sw_tensor x = sw_tensor_view(ds->images, &xs);
    const sw_tensor *y = NULL;
    sw_model_set_training(m, false);
    CHECK_OK(sw_model_forward(m, &x, &y));
    sw_tensor *copy = NULL;
    CHECK_OK(sw_tensor_clone(&m->outs[sw_model_find(m, node)], &copy));
    return copy;
}

/* The reported loss is origin_loss_lambda * CE + the distillation terms, each computed here
 * from the two models' outputs with the plain losses. */
static void test_distill_mixes_task_loss(void **state) {
    (void)state;
    fd_setup f;
    fd_build(&f, false, false);
    int labels[8];
    for (int i = 0; i < 8; i++) labels[i] = f.ds->labels[i];
    sw_tensor *s1 = node_output(f.student, f.ds, "fc1"), *s2 = node_output(f.student, f.ds, "fc2");
    sw_tensor *t1 = node_output(f.teacher, f.ds, "fc1"), *t2 = node_output(f.teacher, f.ds, "fc2");
    double ce, mse, kl;
    CHECK_OK(sw_loss_cross_entropy(s2, labels, 1.0f, &ce, NULL));
    CHECK_OK(sw_loss_mse(s1, t1, 1.0f, &mse, NULL, NULL));
    CHECK_OK(sw_loss_kl_div(s2, t2, 2.0f, 1.0f, &kl, NULL));
    double total = fd_loss(&f);
    assert_rel(step_term(&f.log, 0, "task"), 0.3 * ce, 1e-6, "task term");
    assert_rel(step_term(&f.log, 0, "distill"), 0.5 * mse + 0.9 * kl, 1e-6, "distill term");
    assert_rel(total, 0.3 * ce + 0.5 * mse + 0.9 * kl, 1e-6, "total");
    sw_distill_losses l;
    CHECK_OK(sw_distiller_losses(f.outer, &l));
    assert_rel(l.task, ce, 1e-6, "task before lambda");
    assert_rel(l.final, total, 1e-6, "final");
    assert_int_equal(l.steps, 1);
    sw_tensor_free(s1);
    sw_tensor_free(s2);
    sw_tensor_free(t1);
    sw_tensor_free(t2);
    fd_free(&f);
}

/* Nested distillers follow NNI's patch nesting: the older one's lambda scales the task loss
 * and the newer one's term, final = 0.5 (0.2 CE + d_new) + d_old. */
static void test_distill_nested_lambdas(void **state) {
    (void)state;
    fd_setup f;
    fd_build(&f, false, true);
    int labels[8];
    for (int i = 0; i < 8; i++) labels[i] = f.ds->labels[i];
    sw_tensor *s1 = node_output(f.student, f.ds, "fc1"), *s2 = node_output(f.student, f.ds, "fc2");
    sw_tensor *t2 = node_output(f.teacher, f.ds, "fc2"), *u1 = node_output(f.teacher2, f.ds, "fc1");
    double ce, mse, kl;
    CHECK_OK(sw_loss_cross_entropy(s2, labels, 1.0f, &ce, NULL));
    CHECK_OK(sw_loss_mse(s1, u1, 1.0f, &mse, NULL, NULL));
    CHECK_OK(sw_loss_kl_div(s2, t2, 2.0f, 1.0f, &kl, NULL));
    double total = fd_loss(&f);
    assert_rel(step_term(&f.log, 0, "task"), 0.5 * 0.2 * ce, 1e-6, "task term");
    assert_rel(step_term(&f.log, 0, "distill2"), 0.5 * (0.5 * mse), 1e-6, "inner term");
    assert_rel(step_term(&f.log, 0, "distill"), 0.9 * kl, 1e-6, "outer term");
    assert_rel(total, 0.5 * (0.2 * ce + 0.5 * mse) + 0.9 * kl, 1e-6, "total");
    /* The evaluator's training step is restored after the run. */
    sw_evaluator plain;
    CHECK_OK(sw_evaluator_init(&plain, f.ds, NULL, NULL));
    assert_ptr_equal(f.ev.training_step, plain.training_step);
    assert_int_equal(f.ev.n_hooks, 0);
    sw_evaluator_deinit(&plain);
    sw_tensor_free(s1);
    sw_tensor_free(s2);
    sw_tensor_free(t2);
    sw_tensor_free(u1);
    fd_free(&f);
}

/* Checks d total / d value for a spread sample of `n` floats against central differences. */
static void fd_check(fd_setup *f, float *values, const float *grads, size_t n, const char *what) {
    const float eps = 5e-3f;
    size_t stride = n > 12 ? n / 12 : 1;
    for (size_t i = 0; i < n; i += stride) {
        float keep = values[i], analytic = grads[i];
        values[i] = keep + eps;
        double up = fd_loss(f);
        values[i] = keep - eps;
        double down = fd_loss(f);
        values[i] = keep;
        double numeric = (up - down) / (2.0 * (double)eps);
        if (fabs(numeric - analytic) > 2e-4 + 1e-2 * fabs(numeric))
            fail_msg("%s[%zu]: analytic %.6g, numeric %.6g", what, i, (double)analytic, numeric);
    }
}

/* The gradient the fused step back-propagates (task, distillation through the captures, the
 * adapter's own) is the gradient of the reported loss: finite differences on the student's
 * weights, for Dynamic, Adaptive1d with an adapter, and two nested distillers. */
static void test_distill_gradients_fd(void **state) {
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        fd_setup f;
        fd_build(&f, variant == 1, variant == 2);
        fd_loss(&f);
        /* lr 0: the weights did not move, and the gradients of that step are still there. */
        size_t n = f.student->n_param_floats;
        float *grad = malloc(n * sizeof *grad);
        memcpy(grad, f.student->grad_data, n * sizeof *grad);
        fd_check(&f, f.student->param_data, grad, n, "student");
        if (variant == 1) {
            sw_distiller *d = sw_distiller_of(f.outer);
            assert_true(d->n_adapter == 20 * 12 + 20);
            fd_loss(&f);
            float *agrad = malloc(d->n_adapter * sizeof *agrad);
            memcpy(agrad, d->adapter_grad, d->n_adapter * sizeof *agrad);
            fd_check(&f, d->adapter, agrad, d->n_adapter, "adapter");
            free(agrad);
        }
        free(grad);
        fd_free(&f);
    }
}

/* ---- golden fixtures ------------------------------------------------------------------------ */

/* Splits "stepK/adapter/<module>.<target>.<weight|bias>". */
static bool adapter_key(const char *name, const char *prefix, char *module, char *target,
                        bool *is_weight) {
    size_t lp = strlen(prefix);
    if (strncmp(name, prefix, lp) != 0) return false;
    const char *rest = name + lp, *last = strrchr(rest, '.'), *t = strstr(rest, "._");
    if (!last || !t || t >= last) return false;
    snprintf(module, 128, "%.*s", (int)(t - rest), rest);
    snprintf(target, 32, "%.*s", (int)(last - t - 1), t + 1);
    *is_weight = strcmp(last + 1, "weight") == 0;
    return true;
}

/* Copies or compares every adapter tensor of step k with the distiller's. */
static void golden_adapters(const sw_safetensors *g, sw_compressor *c, int k, bool load) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "step%d/adapter/", k);
    for (int e = 0; e < g->n_entries; e++) {
        char module[128], target[32];
        bool is_weight;
        if (!adapter_key(g->entries[e].name, prefix, module, target, &is_weight)) continue;
        sw_tensor w, b, ref;
        CHECK_OK(sw_distiller_adapter(c, module, target, &w, &b));
        sw_tensor *mine = is_weight ? &w : &b;
        CHECK_OK(sw_safetensors_get_f32(g, g->entries[e].name, &ref));
        assert_int_equal(ref.numel, mine->numel);
        if (load)
            memcpy(mine->data, ref.data, ref.numel * sizeof(float));
        else
            sw_test_assert_close(mine->data, ref.data, ref.numel, 1e-6f, 1e-4f, g->entries[e].name);
        sw_tensor_deinit(&ref);
    }
}

static double golden_scalar(const sw_safetensors *g, const char *name) {
    sw_tensor t;
    CHECK_OK(sw_safetensors_get_f32(g, name, &t));
    double v = t.data[0];
    sw_tensor_deinit(&t);
    return v;
}

/* An MLP shaped like the fixture's "<prefix>" tensors: Linear layers in the given order. */
static sw_model *golden_mlp(const sw_safetensors *g, const char *prefix, int in) {
    static const char *const order[] = {"fc1", "mid", "fc2"};
    const char *names[3];
    int widths[3], n = 0;
    for (int i = 0; i < 3; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s%s.weight", prefix, order[i]);
        const sw_st_entry *e = sw_safetensors_find(g, key);
        if (!e) continue;
        names[n] = order[i];
        widths[n++] = (int)e->shape[0];
    }
    sw_model *m = mlp(in, n, widths, names, true);
    tm_load_params(m, g, prefix);
    return m;
}

/* Replays one fixture: NNI's student and teacher, its config list and origin_loss_lambda, SGD
 * on the same batch each step; the origin / distill / final losses of every step match
 * (rtol 1e-5), the student's weights after each step too, and for Adaptive1d the adapter that
 * step 2 used is the one step 1 trained. */
static void run_golden(const char *file, bool adaptive) {
    char path[512];
    sw_safetensors *g = NULL;
    CHECK_OK(sw_safetensors_read_file(sw_test_data_path(file, path, sizeof path), &g));
    double lambda = atof(sw_safetensors_meta(g, "origin_loss_lambda"));
    int steps = atoi(sw_safetensors_meta(g, "steps"));
    const char *opt = sw_safetensors_meta(g, "optimizer");
    const char *lr_text = strstr(opt, "lr=");
    assert_non_null(lr_text);
    assert_non_null(strstr(opt, "SGD("));
    float lr = (float)atof(lr_text + 3);
    cJSON *cfg = tm_json(sw_safetensors_meta(g, "config_list"));
    sw_tensor x, y;
    CHECK_OK(sw_safetensors_get_f32(g, "input", &x));
    CHECK_OK(sw_safetensors_get_f32(g, "target", &y));
    int n = x.shape.dims[0], in = x.shape.dims[1];
    sw_model *student = golden_mlp(g, "student_init/", in);
    sw_model *teacher = golden_mlp(g, "teacher/", in);
    int classes = sw_model_output_shape(student).dims[0];
    sw_dataset *ds = make_dataset(n, 1, 1, in, classes, x.data, y.data, 0);
    sw_train_config tc = plain_sgd(lr, n);
    sw_evaluator ev;
    CHECK_OK(sw_evaluator_init(&ev, ds, NULL, &tc));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(student, &ws));
    sw_compressor *c = NULL;
    if (adaptive)
        CHECK_OK(sw_distiller_adaptive1d_new(ws, cfg, &ev, teacher, NULL, NULL, lambda, &c));
    else
        CHECK_OK(sw_distiller_dynamic_new(ws, cfg, &ev, teacher, NULL, NULL, lambda, &c));
    sw_wrapper_set_release(ws);
    if (adaptive) golden_adapters(g, c, 1, true);
    for (int k = 1; k <= steps; k++) {
        char name[128];
        if (adaptive && k > 1) golden_adapters(g, c, k, false);
        CHECK_OK(sw_compressor_compress(c, 1, -1));
        sw_distill_losses l;
        CHECK_OK(sw_distiller_losses(c, &l));
        snprintf(name, sizeof name, "step%d/origin_loss", k);
        assert_rel(l.task, golden_scalar(g, name), 1e-5, name);
        snprintf(name, sizeof name, "step%d/distill_loss", k);
        assert_rel(l.distill, golden_scalar(g, name), 1e-5, name);
        snprintf(name, sizeof name, "step%d/final_loss", k);
        assert_rel(l.final, golden_scalar(g, name), 1e-5, name);
        for (int i = 0; i < student->n_nodes; i++) {
            sw_layer *layer = student->nodes[i].layer;
            for (int p = 0; p < layer->n_params; p++) {
                sw_tensor ref;
                snprintf(name, sizeof name, "step%d/student_after/%s.%s", k, student->nodes[i].name,
                         layer->params[p].name);
                CHECK_OK(sw_safetensors_get_f32(g, name, &ref));
                sw_test_assert_close(layer->params[p].value.data, ref.data, ref.numel, 1e-6f, 1e-4f,
                                     name);
                sw_tensor_deinit(&ref);
            }
        }
    }
    sw_compressor_free(c);
    sw_evaluator_deinit(&ev);
    free_dataset(ds);
    sw_model_free(student);
    sw_model_free(teacher);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&y);
    cJSON_Delete(cfg);
    sw_safetensors_free(g);
}

/* Dynamic, fc1 mse: NNI's losses and SGD steps. */
static void test_distill_golden_dynamic_mse(void **state) {
    (void)state;
    run_golden("golden/distill_dynamic_mse.safetensors", false);
}

/* Dynamic, fc2 kl (temperature 2). */
static void test_distill_golden_dynamic_kl(void **state) {
    (void)state;
    run_golden("golden/distill_dynamic_kl.safetensors", false);
}

/* Dynamic, fc1 linked to two teacher layers (min over links) plus fc2 kl. */
static void test_distill_golden_dynamic_multilink(void **state) {
    (void)state;
    run_golden("golden/distill_dynamic_mse_kl_multilink.safetensors", false);
}

/* Adaptive1d, fc1 mse through a 16 -> 24 adapter that trains with the student. */
static void test_distill_golden_adaptive1d_mse(void **state) {
    (void)state;
    run_golden("golden/distill_adaptive1d_mse.safetensors", true);
}

/* Adaptive1d, fc2 kl (equal widths: no adapter). */
static void test_distill_golden_adaptive1d_kl(void **state) {
    (void)state;
    run_golden("golden/distill_adaptive1d_kl.safetensors", true);
}

/* Adaptive1d, fc1 mse with adapter plus fc2 kl. */
static void test_distill_golden_adaptive1d_mse_kl(void **state) {
    (void)state;
    run_golden("golden/distill_adaptive1d_mse_kl.safetensors", true);
}

/* ---- construction errors ------------------------------------------------------------------ */

/* Bad configs and arguments fail at construction with a message naming what is wrong, and
 * leave the model without hooks. */
static void test_distill_config_errors(void **state) {
    (void)state;
    const char *names[2] = {"fc1", "fc2"};
    int w[2] = {12, 5}, wide[2] = {20, 5};
    sw_model *m = mlp(16, 2, w, names, true);
    sw_model *teacher = mlp(16, 2, wide, names, true);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    static const struct {
        const char *cfg;
        bool adaptive;
        const char *expect;
    } cases[] = {
        {"[{\"op_names\": [\"fc1\"], \"link\": \"nowhere\"}]", false, "\"nowhere\""},
        {"[{\"op_names\": [\"fc1\"], \"apply_method\": \"l1\"}]", false, "apply_method"},
        {"[{\"op_names\": [\"fc1\"], \"lambda\": -1}]", false, "lambda"},
        {"[{\"op_names\": [\"fc1\"], \"link\": []}]", false, "link"},
        {"[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.5}]", false, "sparse_ratio"},
        {"[{\"op_names\": [\"fc1\"], \"target_names\": [\"weight\"], \"target_settings\": "
         "{\"weight\": {\"lambda\": 1}}}]",
         false, "parameter"},
        {"[{\"op_names\": [\"flatten\"], \"target_names\": [\"_input_0\"], \"target_settings\": "
         "{\"_input_0\": {\"lambda\": 1}}}]",
         false, "model input"},
        {"[{\"op_names\": [\"fc1\"]}]", false, "Adaptive1dLayerwiseDistiller adapts"},
        {"[{\"op_names\": [\"fc1\"], \"link\": [\"fc1\", \"fc2\"]}]", true, "exactly one"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *c = tm_json(cases[i].cfg);
        sw_compressor *d = NULL;
        sw_status st = cases[i].adaptive
                           ? sw_distiller_adaptive1d_new(ws, c, NULL, teacher, NULL, NULL, 1.0, &d)
                           : sw_distiller_dynamic_new(ws, c, NULL, teacher, NULL, NULL, 1.0, &d);
        if (st == SW_OK) fail_msg("case %zu (%s) was accepted", i, cases[i].cfg);
        if (!strstr(sw_error_message(), cases[i].expect))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, sw_error_message(),
                     cases[i].expect);
        cJSON_Delete(c);
        for (int k = 0; k < m->n_nodes; k++) assert_null(m->nodes[k].hooks);
    }
    cJSON *ok = tm_json("[{\"op_names\": [\"fc2\"]}]");
    sw_compressor *d = NULL;
    assert_int_equal(sw_distiller_dynamic_new(ws, ok, NULL, m, NULL, NULL, 1.0, &d), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "the student itself"));
    assert_int_equal(sw_distiller_dynamic_new(ws, ok, NULL, teacher, NULL, NULL, NAN, &d),
                     SW_ERR_ARG);
    assert_int_equal(sw_distiller_dynamic_new(ws, ok, NULL, NULL, NULL, NULL, 1.0, &d), SW_ERR_ARG);
    /* A distiller trains: compress without limits is refused, with limits needs an evaluator. */
    CHECK_OK(sw_distiller_dynamic_new(ws, ok, NULL, teacher, NULL, NULL, 1.0, &d));
    assert_int_equal(sw_compressor_compress(d, -1, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "max_steps"));
    assert_int_equal(sw_compressor_compress(d, 3, -1), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "evaluator"));
    sw_tensor aw, ab;
    assert_int_equal(sw_distiller_adapter(d, "fc2", "_output_0", &aw, &ab), SW_ERR_NOT_FOUND);
    sw_compressor_free(d);
    cJSON_Delete(ok);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    sw_model_free(teacher);
}

/* Two distillers on one target: the first keeps it, the second warns and leaves it alone. */
static void test_distill_same_target_first_wins(void **state) {
    (void)state;
    const char *names[2] = {"fc1", "fc2"};
    int w[2] = {12, 5};
    sw_model *m = mlp(16, 2, w, names, true);
    sw_model *teacher = mlp(16, 2, w, names, true);
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c1 = tm_json("[{\"op_names\": [\"fc2\"], \"apply_method\": \"kl\"}]");
    cJSON *c2 = tm_json("[{\"op_types\": [\"Linear\"]}]");
    sw_compressor *a = NULL, *b = NULL;
    CHECK_OK(sw_distiller_dynamic_new(ws, c1, NULL, teacher, NULL, NULL, 1.0, &a));
    CHECK_OK(sw_distiller_adaptive1d_from_compressor(a, c2, teacher, NULL, NULL, 1.0, NULL, &b));
    assert_int_equal(sw_distiller_of(a)->n_targets, 1);
    assert_int_equal(sw_distiller_of(b)->n_targets, 1);
    assert_string_equal(sw_distiller_of(b)->targets[0].module, "fc1");
    const sw_warnings *wr = sw_compressor_warnings(b);
    assert_int_equal(sw_warnings_count(wr), 1);
    assert_non_null(strstr(sw_warnings_get(wr, 0), "fc2._output_0 is already distilled by "
                                                   "DynamicLayerwiseDistiller"));
    /* The captures sit last in their chains. */
    sw_target *t = sw_wrapper_target(&ws->wrappers[sw_model_find(m, "fc2")], "_output_0");
    assert_int_equal(t->n_tf, 1);
    assert_int_equal(t->tf[0]->stage, SW_STAGE_CAPTURE);
    sw_compressor_free(a);
    sw_compressor_free(b);
    for (int k = 0; k < m->n_nodes; k++) assert_null(m->nodes[k].hooks);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    sw_wrapper_set_release(ws);
    sw_model_free(m);
    sw_model_free(teacher);
}

/* ---- fusion with pruners ------------------------------------------------------------------ */

static void snapshot_params(const sw_model *m, float **params, float **buffers) {
    *params = malloc(m->n_param_floats * sizeof(float));
    memcpy(*params, m->param_data, m->n_param_floats * sizeof(float));
    *buffers = malloc((m->n_buffer_floats + 1) * sizeof(float));
    if (m->n_buffer_floats) memcpy(*buffers, m->buffer_data, m->n_buffer_floats * sizeof(float));
}

/* L1NormPruner fused with a DynamicLayerwiseDistiller (teacher: the dense model) on a small
 * set: one compress trains; the distillation term falls; the masks are the one-shot masks of
 * the starting weights and hold; the teacher's weights and statistics do not change. */
static void test_distill_fused_with_pruner(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(64, 1, 6, 6, 10, NULL, NULL, 17);
    sw_train_config cfg = plain_sgd(0.05f, 16);
    sw_evaluator ev;
    CHECK_OK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    step_log *log = calloc(1, sizeof *log);
    CHECK_OK(sw_metric_bus_add(&ev.bus, step_listener, log));
    sw_model *m = tm_simple_model(6, 6), *teacher = NULL, *ref = NULL;
    CHECK_OK(sw_model_clone(m, &teacher));
    CHECK_OK(sw_model_clone(m, &ref));
    float *tp, *tb;
    snapshot_params(teacher, &tp, &tb);
    cJSON *pc = tm_json("[{\"op_names\": [\"conv1\", \"conv3\", \"fc1\"], \"sparse_ratio\": 0.5}]");
    cJSON *dc = tm_json("[{\"op_names\": [\"fc2\"], \"apply_method\": \"kl\"},"
                        " {\"op_names\": [\"fc1\"], \"lambda\": 0.5}]");
    /* The masks a one-shot L1 pruner finds on the starting weights. */
    sw_wrapper_set *rws = NULL;
    sw_compressor *rp = NULL;
    CHECK_OK(sw_wrapper_set_new(ref, &rws));
    CHECK_OK(sw_pruner_l1norm_new(rws, pc, NULL, &rp));
    CHECK_OK(sw_compressor_compress(rp, -1, -1));
    sw_masks want;
    CHECK_OK(sw_pruner_get_masks(rp, &want));

    sw_wrapper_set *ws = NULL;
    sw_compressor *p = NULL, *d = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    CHECK_OK(sw_pruner_l1norm_new(ws, pc, &ev, &p));
    sw_wrapper_set_release(ws);
    CHECK_OK(sw_distiller_dynamic_from_compressor(p, dc, teacher, NULL, NULL, 0.1, NULL, &d));
    assert_ptr_equal(d->ev, &ev);
    CHECK_OK(sw_compressor_compress(d, 80, -1));
    assert_int_equal(log->n, 80);
    double first = 0, last = 0;
    for (int k = 0; k < 8; k++) first += step_term(log, k, "distill") / 8;
    for (int k = 72; k < 80; k++) last += step_term(log, k, "distill") / 8;
    if (!(last < 0.6 * first)) fail_msg("distillation term %g -> %g did not fall", first, last);
    /* Masks: exactly the one-shot masks, and the pruned weights act as zeros. */
    sw_masks got;
    CHECK_OK(sw_pruner_get_masks(d, &got));
    assert_int_equal(got.n, want.n);
    for (int i = 0; i < want.n; i++) {
        const sw_tensor *g = sw_masks_find(&got, want.items[i].module, want.items[i].target);
        assert_non_null(g);
        assert_memory_equal(g->data, want.items[i].mask.data, g->numel * sizeof(float));
    }
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&got, "fc1", "weight")), 0.5, 0);
    CHECK_OK(sw_compressor_unwrap_model(d));
    const sw_tensor *fm = sw_masks_find(&got, "fc1", "weight");
    const sw_tensor *fw = tm_param(m, "fc1", "weight");
    for (size_t i = 0; i < fw->numel; i++)
        if (fm->data[i] == 0.0f) assert_float_equal(fw->data[i], 0, 0);
    /* The teacher is untouched. */
    assert_memory_equal(teacher->param_data, tp, teacher->n_param_floats * sizeof(float));
    assert_memory_equal(teacher->buffer_data, tb, teacher->n_buffer_floats * sizeof(float));
    assert_false(teacher->training);
    /* Detached by the unwrap: a further compress is refused. */
    assert_int_equal(sw_compressor_compress(d, 1, -1), SW_ERR_ARG);
    sw_masks_deinit(&got);
    sw_masks_deinit(&want);
    sw_compressor_free(p);
    sw_compressor_free(d);
    sw_compressor_free(rp);
    sw_wrapper_set_release(rws);
    cJSON_Delete(pc);
    cJSON_Delete(dc);
    free(tp);
    free(tb);
    free(log);
    sw_model_free(m);
    sw_model_free(teacher);
    sw_model_free(ref);
    sw_evaluator_deinit(&ev);
    free_dataset(ds);
}

/* The reference's fusion example in shape: three pruners, then two distillers chained with
 * from_compressor, one compress on the newest. Every mask is generated, both distillers add
 * their terms to every step, the adapter of the second trains, and compress leaves no hooks
 * behind; members can be freed in any order. */
static void test_distill_chain_three_pruners_two_distillers(void **state) {
    (void)state;
    sw_dataset *ds = make_dataset(48, 1, 6, 6, 10, NULL, NULL, 29);
    sw_train_config cfg = plain_sgd(0.02f, 16);
    sw_evaluator ev;
    CHECK_OK(sw_evaluator_init(&ev, ds, NULL, &cfg));
    step_log *log = calloc(1, sizeof *log);
    CHECK_OK(sw_metric_bus_add(&ev.bus, step_listener, log));
    sw_model *m = tm_simple_model(6, 6), *teacher = NULL;
    CHECK_OK(sw_model_clone(m, &teacher));
    sw_wrapper_set *ws = NULL;
    CHECK_OK(sw_wrapper_set_new(m, &ws));
    cJSON *c1 = tm_json("[{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}]");
    cJSON *c2 = tm_json("[{\"op_names\": [\"conv2\", \"conv3\"], \"sparse_ratio\": 0.25}]");
    cJSON *c3 = tm_json("[{\"op_names\": [\"fc1\"], \"sparse_ratio\": 0.75}]");
    cJSON *d1 = tm_json("[{\"op_names\": [\"fc2\"], \"apply_method\": \"kl\", \"lambda\": 0.9}]");
    /* fc1 (100 wide) learns the teacher's flattened features (128 wide) through an adapter. */
    cJSON *d2 = tm_json("[{\"op_names\": [\"fc1\"], \"link\": \"flatten\", \"lambda\": 0.1}]");
    sw_compressor *a = NULL, *b = NULL, *c = NULL, *x = NULL, *y = NULL;
    CHECK_OK(sw_pruner_l1norm_new(ws, c1, &ev, &a));
    sw_wrapper_set_release(ws);
    CHECK_OK(sw_pruner_l2norm_from_compressor(a, c2, NULL, &b));
    CHECK_OK(sw_pruner_fpgm_from_compressor(b, c3, NULL, &c));
    /* An adapter maps only the last dim: a conv output [16, 4, 4] cannot teach fc1 [100]. */
    cJSON *bad = tm_json("[{\"op_names\": [\"fc1\"], \"link\": \"conv1\"}]");
    assert_int_equal(
        sw_distiller_adaptive1d_from_compressor(c, bad, teacher, NULL, NULL, 1.0, NULL, &y),
        SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "the last dim"));
    assert_null(c->next);
    cJSON_Delete(bad);
    CHECK_OK(sw_distiller_dynamic_from_compressor(c, d1, teacher, NULL, NULL, 0.5, NULL, &x));
    CHECK_OK(sw_distiller_adaptive1d_from_compressor(x, d2, teacher, NULL, NULL, 1.0, NULL, &y));
    assert_int_equal(sw_compressor_chain_length(y), 5);
    sw_tensor aw, ab;
    CHECK_OK(sw_distiller_adapter(y, "fc1", "_output_0", &aw, &ab));
    assert_int_equal(aw.shape.dims[0], 128);
    assert_int_equal(aw.shape.dims[1], 100);
    float *adapter0 = malloc(aw.numel * sizeof(float));
    memcpy(adapter0, aw.data, aw.numel * sizeof(float));
    CHECK_OK(sw_compressor_compress(y, 6, -1));
    assert_int_equal(log->n, 6);
    for (int k = 0; k < 6; k++) {
        assert_int_equal(log->n_terms[k], 3);
        assert_true(step_term(log, k, "distill") > 0);
        assert_true(step_term(log, k, "distill2") > 0);
        double sum = log->terms[k][0] + log->terms[k][1] + log->terms[k][2];
        assert_rel(log->loss[k], sum, 1e-12, "loss = sum of terms");
    }
    sw_distill_losses lx, ly;
    CHECK_OK(sw_distiller_losses(x, &lx));
    CHECK_OK(sw_distiller_losses(y, &ly));
    assert_int_equal(lx.steps, 6);
    assert_int_equal(ly.steps, 6);
    assert_true(memcmp(adapter0, aw.data, aw.numel * sizeof(float)) != 0);
    sw_masks masks;
    CHECK_OK(sw_pruner_get_masks(y, &masks));
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "conv1", "weight")), 0.5, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "conv3", "weight")), 0.25, 0);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "fc1", "weight")), 0.75, 0);
    sw_masks_deinit(&masks);
    assert_int_equal(ev.n_hooks, 0);
    /* Free out of order: a distiller in the middle, then the pruners, the newest last. */
    sw_compressor_free(x);
    assert_ptr_equal(y->previous, c);
    sw_compressor_free(a);
    sw_compressor_free(c);
    sw_compressor_free(b);
    assert_int_equal(sw_compressor_chain_length(y), 1);
    sw_compressor_free(y);
    for (int k = 0; k < m->n_nodes; k++) assert_null(m->nodes[k].hooks);
    free(adapter0);
    free(log);
    cJSON_Delete(c1);
    cJSON_Delete(c2);
    cJSON_Delete(c3);
    cJSON_Delete(d1);
    cJSON_Delete(d2);
    sw_model_free(m);
    sw_model_free(teacher);
    sw_evaluator_deinit(&ev);
    free_dataset(ds);
}

/* A teacher_predict that does not run the teacher leaves every pair missing: the step has a
 * zero distillation term (NNI skips None states) and the task loss alone trains. */
static sw_status skip_predict(void *ctx, const sw_batch *batch, sw_model *teacher) {
    int *calls = ctx;
    (void)batch;
    (void)teacher;
    (*calls)++;
    return SW_OK;
}

static void test_distill_custom_predict(void **state) {
    (void)state;
    fd_setup f;
    fd_build(&f, false, false);
    sw_compressor_free(f.outer);
    int calls = 0;
    cJSON *c = tm_json("[{\"op_names\": [\"fc2\"], \"apply_method\": \"kl\"}]");
    CHECK_OK(
        sw_distiller_dynamic_new(f.ws, c, &f.ev, f.teacher, skip_predict, &calls, 1.0, &f.outer));
    fd_loss(&f);
    fd_loss(&f);
    assert_int_equal(calls, 2);
    assert_float_equal(step_term(&f.log, 1, "distill"), 0, 0);
    assert_int_equal(sw_distiller_of(f.outer)->targets[0].last_link, -1);
    cJSON_Delete(c);
    fd_free(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distill_mse_hand),
        cmocka_unit_test(test_distill_kl_temperature_hand),
        cmocka_unit_test(test_distill_adapter_gradients_fd),
        cmocka_unit_test(test_distill_mixes_task_loss),
        cmocka_unit_test(test_distill_nested_lambdas),
        cmocka_unit_test(test_distill_gradients_fd),
        cmocka_unit_test(test_distill_golden_dynamic_mse),
        cmocka_unit_test(test_distill_golden_dynamic_kl),
        cmocka_unit_test(test_distill_golden_dynamic_multilink),
        cmocka_unit_test(test_distill_golden_adaptive1d_mse),
        cmocka_unit_test(test_distill_golden_adaptive1d_kl),
        cmocka_unit_test(test_distill_golden_adaptive1d_mse_kl),
        cmocka_unit_test(test_distill_config_errors),
        cmocka_unit_test(test_distill_same_target_first_wins),
        cmocka_unit_test(test_distill_fused_with_pruner),
        cmocka_unit_test(test_distill_chain_three_pruners_two_distillers),
        cmocka_unit_test(test_distill_custom_predict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
