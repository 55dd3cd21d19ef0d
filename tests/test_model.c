/* test_model.c - the model graph: construction errors, zoo architectures, parameter counts,
 * module tree, clone, determinism, the executor's arena reuse, its gradient memory plan and inference fusion. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "nn/loss.h"
#include "nn/model.h"
#include "nn/module_tree.h"
#include "nn/zoo.h"
#include "tensor/conv_tiled.h"

/* Zoo models have exactly the parameter counts of their PyTorch twins (tests/bench/torch_peer.py). */
static void test_model_zoo_param_counts(void **state) {
    (void)state;
    static const struct {
        const char *name;
        size_t params;
    } expected[] = {{"fmnist_mlp", 235146}, {"fmnist_cnn", 824650}, {"fmnist_resnet", 696042}};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        sw_model *m = NULL;
        assert_int_equal(sw_zoo_build(expected[i].name, 1, &m), SW_OK);
        assert_int_equal(sw_model_param_count(m), expected[i].params);
        assert_int_equal(m->n_param_floats, expected[i].params);
        sw_shape out = sw_model_output_shape(m);
        assert_int_equal(out.ndim, 1);
        assert_int_equal(out.dims[0], 10);
        sw_model_free(m);
    }
}

/* An unknown zoo name is an error that lists the known models. */
static void test_model_zoo_unknown_name(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("resnet9000", 0, &m), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), "fmnist_cnn"));
    assert_null(m);
}

/* fmnist_cnn's FLOPs per image match the hand count (multiply-add = 2). */
static void test_model_cnn_flops(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_cnn", 1, &m), SW_OK);
    int conv1 = sw_model_find(m, "conv1"), conv2 = sw_model_find(m, "conv2");
    int fc1 = sw_model_find(m, "fc1");
    assert_true(conv1 >= 0 && conv2 >= 0 && fc1 >= 0);
    /* conv1: 32 out x 28x28 x (1*3*3) MACs; conv2: 64 x 14x14 x (32*9); fc1: 3136*256. */
    assert_true(m->nodes[conv1].flops >= 2.0 * 32 * 784 * 9);
    assert_true(m->nodes[conv2].flops >= 2.0 * 64 * 196 * 288);
    assert_true(m->nodes[conv2].flops <= 2.0 * 64 * 196 * 288 * 1.01 + 64 * 196 * 2);
    assert_true(m->nodes[fc1].flops >= 2.0 * 3136 * 256);
    sw_model_free(m);
}

/* Adding a node whose input does not exist, or whose shapes do not fit, fails with a message
 * naming the node; the model stays usable. */
static void test_model_add_errors(void **state) {
    (void)state;
    sw_shape in = sw_shape_3d(1, 8, 8);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = 3; /* the input has 1 channel */
    hp.out_channels = 4;
    hp.kernel[0] = hp.kernel[1] = 3;
    sw_layer *conv = NULL;
    assert_int_equal(sw_layer_new(SW_LAYER_CONV2D, &hp, &conv), SW_OK);
    assert_int_not_equal(sw_model_add(m, "conv", conv, NULL, 0, NULL), SW_OK);
    assert_non_null(strstr(sw_error_message(), "conv"));
    sw_layer *relu = NULL;
    sw_layer_hparams rh = sw_layer_hparams_default(SW_LAYER_RELU);
    assert_int_equal(sw_layer_new(SW_LAYER_RELU, &rh, &relu), SW_OK);
    const char *missing[] = {"nowhere"};
    assert_int_equal(sw_model_add(m, "relu", relu, missing, 1, NULL), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), "nowhere"));
    assert_int_equal(sw_layer_new(SW_LAYER_RELU, &rh, &relu), SW_OK);
    assert_int_equal(sw_model_add(m, "relu", relu, NULL, 0, NULL), SW_OK);
    assert_int_equal(sw_layer_new(SW_LAYER_RELU, &rh, &relu), SW_OK);
    assert_int_equal(sw_model_add(m, "relu", relu, NULL, 0, NULL), SW_ERR_ARG); /* duplicate */
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_free(m);
}

/* The module tree of the ResNet nests blocks under stages and sums parameters upwards. */
static void test_model_module_tree(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_resnet", 1, &m), SW_OK);
    sw_module_tree tree;
    assert_int_equal(sw_module_tree_build(m, &tree), SW_OK);
    int layer2 = -1, block = -1, conv = -1;
    for (int i = 0; i < tree.n; i++) {
        if (strcmp(tree.entries[i].path, "layer2") == 0) layer2 = i;
        if (strcmp(tree.entries[i].path, "layer2.0") == 0) block = i;
        if (strcmp(tree.entries[i].path, "layer2.0.conv1") == 0) conv = i;
    }
    assert_true(layer2 >= 0 && block > layer2 && conv > block);
    assert_int_equal(tree.entries[layer2].node, -1);
    assert_int_equal(tree.entries[block].parent, layer2);
    assert_int_equal(tree.entries[conv].parent, block);
    assert_int_equal(tree.entries[conv].depth, 2);
    assert_string_equal(tree.entries[conv].label, "conv1");
    /* layer2 = block 0 (57728) + block 1 (73984) parameters. */
    assert_int_equal(tree.entries[layer2].param_count, 57728 + 73984);
    size_t top = 0;
    for (int i = 0; i < tree.n; i++)
        if (tree.entries[i].parent < 0) top += tree.entries[i].param_count;
    assert_int_equal(top, sw_model_param_count(m));
    /* Pre-order: every entry's parent comes before it. */
    for (int i = 0; i < tree.n; i++) assert_true(tree.entries[i].parent < i);
    sw_module_tree_deinit(&tree);
    sw_model_free(m);
}

/* A clone computes the same outputs as the original and owns separate storage. */
static void test_model_clone_same_output(void **state) {
    (void)state;
    sw_model *m = NULL, *c = NULL;
    assert_int_equal(sw_zoo_build("fmnist_resnet", 7, &m), SW_OK);
    assert_int_equal(sw_model_clone(m, &c), SW_OK);
    assert_ptr_not_equal(m->param_data, c->param_data);
    sw_model_set_training(m, false);
    sw_model_set_training(c, false);
    sw_shape xs = sw_shape_4d(3, 1, 28, 28);
    sw_tensor x;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    sw_test_fill_uniform(&x, 5, -1, 1);
    const sw_tensor *a = NULL, *b = NULL;
    assert_int_equal(sw_model_forward(m, &x, &a), SW_OK);
    assert_int_equal(sw_model_forward(c, &x, &b), SW_OK);
    assert_int_equal(a->numel, 30);
    assert_memory_equal(a->data, b->data, a->numel * sizeof(float));
    sw_tensor_deinit(&x);
    sw_model_free(m);
    sw_model_free(c);
}

/* The same seed gives the same weights; another seed gives other weights. */
static void test_model_init_deterministic(void **state) {
    (void)state;
    sw_model *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(sw_zoo_build("fmnist_cnn", 3, &a), SW_OK);
    assert_int_equal(sw_zoo_build("fmnist_cnn", 3, &b), SW_OK);
    assert_int_equal(sw_zoo_build("fmnist_cnn", 4, &c), SW_OK);
    assert_memory_equal(a->param_data, b->param_data, a->n_param_floats * sizeof(float));
    assert_memory_not_equal(a->param_data, c->param_data, a->n_param_floats * sizeof(float));
    sw_model_free(a);
    sw_model_free(b);
    sw_model_free(c);
}

/* After one training step, further steps of the same batch size allocate nothing: the arena's
 * capacity stops growing. */
static void test_model_arena_steady_state(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_resnet", 1, &m), SW_OK);
    sw_shape xs = sw_shape_4d(4, 1, 28, 28), ys = sw_shape_2d(4, 10);
    sw_tensor x, dl;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    assert_int_equal(sw_tensor_init(&dl, &ys), SW_OK);
    sw_test_fill_uniform(&x, 1, -1, 1);
    int labels[4] = {1, 2, 3, 4};
    size_t capacity = 0;
    for (int step = 0; step < 4; step++) {
        const sw_tensor *out = NULL;
        double loss;
        sw_model_zero_grad(m);
        assert_int_equal(sw_model_forward(m, &x, &out), SW_OK);
        assert_int_equal(sw_loss_cross_entropy(out, labels, 1.0f, &loss, &dl), SW_OK);
        assert_int_equal(sw_model_backward(m, &dl), SW_OK);
        if (step == 1) capacity = m->arena.capacity;
        if (step > 1) assert_int_equal(m->arena.capacity, capacity);
    }
    assert_true(capacity > 0);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&dl);
    sw_model_free(m);
}

/* Checks that no two gradients live at the same time share memory, and returns the floats per
 * sample that one-buffer-per-node storage would need. */
static size_t assert_plan_disjoint(const sw_model *m) {
    const sw_grad_plan *plan = &m->grad_plan;
    int n = m->n_nodes;
    size_t unplanned = 0;
    for (int a = 0; a < n; a++) {
        size_t size_a = sw_shape_numel(&m->nodes[a].out_shape);
        unplanned += size_a;
        assert_true(plan->offset[a] % 16 == 0);
        assert_true(plan->offset[a] + size_a <= plan->per_sample);
        int lc_a = plan->last_consumer[a];
        for (int b = a + 1; b < n; b++) {
            int lc_b = plan->last_consumer[b];
            /* Live from the last consumer's backward (the start when none) down to its own. */
            int from_a = lc_a == n ? n : lc_a, from_b = lc_b == n ? n : lc_b;
            bool time = a <= from_b && b <= from_a;
            if (!time) continue;
            size_t size_b = sw_shape_numel(&m->nodes[b].out_shape);
            bool space = plan->offset[a] < plan->offset[b] + size_b &&
                         plan->offset[b] < plan->offset[a] + size_a;
            if (space) fail_msg("gradients of %s and %s overlap", m->nodes[a].name, m->nodes[b].name);
        }
    }
    return unplanned;
}

/* Activation gradients share memory by liveness: the ResNet needs less than a quarter of one
 * buffer per node, and no two live gradients overlap. */
static void test_model_grad_plan_resnet(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_resnet", 1, &m), SW_OK);
    size_t unplanned = assert_plan_disjoint(m);
    assert_true(m->grad_plan.per_sample * 4 < unplanned);
    /* At least the two largest activations (stem output and its gradient's consumer). */
    assert_true(m->grad_plan.per_sample >= 2 * 32 * 28 * 28);
    sw_model_free(m);
}

static void add_node(sw_model *m, const char *name, sw_layer_kind kind, sw_layer_hparams *hp,
                     const char **inputs, int n_inputs) {
    sw_layer *l = NULL;
    assert_int_equal(sw_layer_new(kind, hp, &l), SW_OK);
    assert_int_equal(sw_model_add(m, name, l, inputs, n_inputs, NULL), SW_OK);
}

/* sum(out * weights): a scalar whose gradient wrt the output is `weights`. */
static double weighted_output(sw_model *m, const sw_tensor *x, const sw_tensor *w) {
    const sw_tensor *out = NULL;
    assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
    double s = 0;
    for (size_t k = 0; k < out->numel; k++) s += (double)out->data[k] * w->data[k];
    return s;
}

/* A graph whose gradients meet in every way the plan must handle: a node consumed twice by one
 * Add, a skip connection, a Concat, a dead branch nothing reads, and layers that overwrite the
 * gradient they write first instead of adding to a zeroed one. The parameter gradients agree
 * with central finite differences. */
static void test_model_grad_plan_dag_gradients(void **state) {
    (void)state;
    sw_shape in = sw_shape_3d(2, 6, 6);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    sw_layer_hparams conv = sw_layer_hparams_default(SW_LAYER_CONV2D);
    conv.in_channels = 2;
    conv.out_channels = 3;
    conv.kernel[0] = conv.kernel[1] = 3;
    conv.padding[0] = conv.padding[1] = 1;
    sw_layer_hparams plain = sw_layer_hparams_default(SW_LAYER_ADD);
    add_node(m, "conv1", SW_LAYER_CONV2D, &conv, NULL, 0);
    sw_layer_hparams relu = sw_layer_hparams_default(SW_LAYER_RELU);
    add_node(m, "dead", SW_LAYER_RELU, &relu, (const char *[]){"conv1"}, 1);
    add_node(m, "twice", SW_LAYER_ADD, &plain, (const char *[]){"conv1", "conv1"}, 2);
    conv.in_channels = 3;
    add_node(m, "conv2", SW_LAYER_CONV2D, &conv, (const char *[]){"twice"}, 1);
    add_node(m, "skip", SW_LAYER_ADD, &plain, (const char *[]){"conv2", "conv1"}, 2);
    sw_layer_hparams cat = sw_layer_hparams_default(SW_LAYER_CONCAT);
    add_node(m, "cat", SW_LAYER_CONCAT, &cat, (const char *[]){"skip", "twice"}, 2);
    /* BatchNorm overwrites the gradient it writes first (din_fresh); a ReLU after it would put
     * kinks within the finite-difference step, so ReLU's overwrite is checked on its kernel */
    sw_layer_hparams bn = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    bn.num_features = 6;
    add_node(m, "bn", SW_LAYER_BATCHNORM2D, &bn, NULL, 0);
    sw_layer_hparams flat = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    add_node(m, "flat", SW_LAYER_FLATTEN, &flat, NULL, 0);
    sw_layer_hparams fc = sw_layer_hparams_default(SW_LAYER_LINEAR);
    fc.in_features = 6 * 36;
    fc.out_features = 4;
    add_node(m, "fc", SW_LAYER_LINEAR, &fc, NULL, 0);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 3);
    assert_plan_disjoint(m);
    assert_int_equal(m->grad_plan.last_consumer[sw_model_find(m, "dead")], m->n_nodes);

    sw_shape xs = sw_shape_4d(2, 2, 6, 6), ys = sw_shape_2d(2, 4);
    sw_tensor x, w;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    assert_int_equal(sw_tensor_init(&w, &ys), SW_OK);
    sw_test_fill_uniform(&x, 11, -1, 1);
    sw_test_fill_uniform(&w, 12, -1, 1);
    sw_model_zero_grad(m);
    weighted_output(m, &x, &w);
    assert_int_equal(sw_model_backward(m, &w), SW_OK);
    float *analytic = malloc(m->n_param_floats * sizeof *analytic);
    assert_non_null(analytic);
    memcpy(analytic, m->grad_data, m->n_param_floats * sizeof *analytic);
    const float h = 1e-2f;
    for (size_t k = 0; k < m->n_param_floats; k += 7) {
        float keep = m->param_data[k];
        m->param_data[k] = keep + h;
        double up = weighted_output(m, &x, &w);
        m->param_data[k] = keep - h;
        double down = weighted_output(m, &x, &w);
        m->param_data[k] = keep;
        double numeric = (up - down) / (2.0 * h);
        assert_true(fabs(numeric - analytic[k]) <= 2e-3 * (1.0 + fabs(numeric)));
    }
    free(analytic);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&w);
    sw_model_free(m);
}

/* Random BatchNorm statistics and affine parameters, so that folding them is not the identity. */
static void randomize_batchnorms(sw_model *m, uint64_t seed) {
    sw_rng rng;
    sw_rng_init(&rng, seed, 1);
    for (int i = 0; i < m->n_nodes; i++) {
        sw_layer *l = m->nodes[i].layer;
        if (l->kind != SW_LAYER_BATCHNORM2D) continue;
        for (int c = 0; c < l->hp.num_features; c++) {
            l->params[0].value.data[c] = 0.5f + sw_rng_uniform(&rng);          /* weight */
            l->params[1].value.data[c] = sw_rng_uniform(&rng) - 0.5f;          /* bias */
            l->params[2].value.data[c] = 0.2f * (sw_rng_uniform(&rng) - 0.5f); /* mean */
            l->params[3].value.data[c] = 0.5f + sw_rng_uniform(&rng);          /* var */
        }
    }
}

/* Max |a - b| / (1 + |b|) of two forwards' outputs, fused then unfused. */
static float fused_vs_unfused(sw_model *m, const sw_tensor *x) {
    const sw_tensor *out = NULL;
    sw_model_set_training(m, false);
    sw_model_set_inference_fusion(m, true);
    assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
    assert_true(m->last_forward_fused);
    sw_tensor *fused = NULL;
    assert_int_equal(sw_tensor_clone(out, &fused), SW_OK);
    sw_model_set_inference_fusion(m, false);
    assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
    assert_false(m->last_forward_fused);
    float worst = 0.0f;
    for (size_t k = 0; k < out->numel; k++) {
        float d = fabsf(fused->data[k] - out->data[k]) / (1.0f + fabsf(out->data[k]));
        if (d > worst) worst = d;
    }
    sw_tensor_free(fused);
    return worst;
}

/* Eval-mode inference fusion finds every Conv2d -> BatchNorm2d [-> ReLU] and Add -> ReLU chain
 * of the zoo models and computes what the layers compute one by one. */
static void test_model_inference_fusion_zoo(void **state) {
    (void)state;
    /* with the tiled kernels (AVX-512), an identity block's conv2-bn2-add-relu is one chain */
    const bool tiled = sw_conv_tiled_available();
    const struct {
        const char *name;
        int chains;
    } zoo[] = {{"fmnist_cnn", 2}, /* conv-bn-relu(-pool when tiled) twice; Linear -> ReLU stays */
               /* stem 1, per block conv1-bn1-relu1 (6); tiled: the 4 identity blocks'
                * conv2-bn2-add-relu, the 2 downsampling blocks' conv2-bn2, downsample conv-bn
                * and add-relu (4 + 2 + 2 + 2); otherwise conv2-bn2 and add-relu per block and
                * the downsample conv-bn (6 + 6 + 2) */
               {"fmnist_resnet", tiled ? 17 : 21}};
    for (size_t z = 0; z < sizeof zoo / sizeof zoo[0]; z++) {
        sw_model *m = NULL;
        assert_int_equal(sw_zoo_build(zoo[z].name, 5, &m), SW_OK);
        assert_int_equal(m->fusion_plan.n_chains, zoo[z].chains);
        randomize_batchnorms(m, 6);
        /* 16 samples: the 7x7 convs put two side by side in one product (conv.c) */
        sw_shape xs = sw_shape_4d(16, 1, 28, 28);
        sw_tensor x;
        assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
        sw_test_fill_uniform(&x, 7, -1, 1);
        assert_true(fused_vs_unfused(m, &x) < 1e-5f);
        sw_tensor_deinit(&x);
        sw_model_free(m);
    }
}

/* A MaxPool2d(2) folds into a stride-1 conv's chain when the tiled kernels run (AVX-512), never
 * into a strided conv's (whose kernel choice depends on the image size) nor after a pool with
 * another geometry; fused and unfused agree either way. */
static void test_model_inference_fusion_pools(void **state) {
    (void)state;
    sw_shape in = sw_shape_3d(3, 30, 30);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    sw_layer_hparams conv = sw_layer_hparams_default(SW_LAYER_CONV2D);
    conv.in_channels = 3, conv.out_channels = 8;
    conv.kernel[0] = conv.kernel[1] = 3;
    conv.padding[0] = conv.padding[1] = 1;
    conv.stride[0] = conv.stride[1] = 2;
    sw_layer_hparams relu = sw_layer_hparams_default(SW_LAYER_RELU);
    sw_layer_hparams pool = sw_layer_hparams_default(SW_LAYER_MAXPOOL2D);
    pool.kernel[0] = pool.kernel[1] = pool.stride[0] = pool.stride[1] = 2;
    sw_layer_hparams bn = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    bn.num_features = 8;
    add_node(m, "strided", SW_LAYER_CONV2D, &conv, NULL, 0); /* 30x30 -> 15x15 */
    add_node(m, "strided_relu", SW_LAYER_RELU, &relu, NULL, 0);
    add_node(m, "strided_pool", SW_LAYER_MAXPOOL2D, &pool, NULL, 0); /* -> 7x7 */
    conv.in_channels = 8, conv.stride[0] = conv.stride[1] = 1;
    add_node(m, "plain", SW_LAYER_CONV2D, &conv, NULL, 0);
    add_node(m, "plain_bn", SW_LAYER_BATCHNORM2D, &bn, NULL, 0);
    add_node(m, "plain_relu", SW_LAYER_RELU, &relu, NULL, 0);
    add_node(m, "plain_pool", SW_LAYER_MAXPOOL2D, &pool, NULL, 0); /* -> 3x3 */
    add_node(m, "wide", SW_LAYER_CONV2D, &conv, NULL, 0);
    pool.kernel[0] = pool.kernel[1] = 3; /* not a plain 2x2 pool */
    add_node(m, "wide_pool", SW_LAYER_MAXPOOL2D, &pool, NULL, 0);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 3);
    randomize_batchnorms(m, 4);
    const sw_fusion_plan *plan = &m->fusion_plan;
    assert_int_equal(plan->n_chains, 2); /* strided-relu, plain-bn-relu[-pool] */
    assert_int_equal(plan->chains[0].pool, -1);
    assert_int_equal(plan->chains[1].pool,
                     sw_conv_tiled_available() ? sw_model_find(m, "plain_pool") : -1);
    assert_int_equal(plan->chain_at[sw_model_find(m, "wide")], -1);
    sw_shape xs = sw_shape_4d(5, 3, 30, 30);
    sw_tensor x;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    sw_test_fill_uniform(&x, 5, -1, 1);
    assert_true(fused_vs_unfused(m, &x) < 1e-5f);
    sw_tensor_deinit(&x);
    sw_model_free(m);
}

static sw_status pass_through(void *ctx, sw_node *node, sw_layer_io *io) {
    (void)node;
    (void)io;
    (*(int *)ctx)++;
    return SW_OK;
}

/* Depthwise and pointwise convs (the direct and the 1x1 kernels) fuse too; a conv read by two
 * nodes does not; a chain with hooks on one of its nodes runs unfused, layer by layer; and
 * backward after a fused forward is refused with a message that says what to do. */
static void test_model_inference_fusion_rules(void **state) {
    (void)state;
    sw_shape in = sw_shape_3d(4, 9, 9);
    sw_model *m = NULL;
    assert_int_equal(sw_model_new("custom", &in, &m), SW_OK);
    sw_layer_hparams dw = sw_layer_hparams_default(SW_LAYER_CONV2D);
    dw.in_channels = dw.out_channels = dw.groups = 4;
    dw.kernel[0] = dw.kernel[1] = 3;
    dw.padding[0] = dw.padding[1] = 1;
    sw_layer_hparams bn = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    bn.num_features = 4;
    sw_layer_hparams relu = sw_layer_hparams_default(SW_LAYER_RELU);
    sw_layer_hparams pw = sw_layer_hparams_default(SW_LAYER_CONV2D);
    pw.in_channels = pw.out_channels = 4;
    pw.kernel[0] = pw.kernel[1] = 1;
    sw_layer_hparams plain = sw_layer_hparams_default(SW_LAYER_ADD);
    add_node(m, "dw", SW_LAYER_CONV2D, &dw, NULL, 0);
    add_node(m, "dw_bn", SW_LAYER_BATCHNORM2D, &bn, NULL, 0);
    add_node(m, "dw_relu", SW_LAYER_RELU, &relu, NULL, 0);
    add_node(m, "pw", SW_LAYER_CONV2D, &pw, NULL, 0);
    add_node(m, "pw_bn", SW_LAYER_BATCHNORM2D, &bn, NULL, 0);
    add_node(m, "shared", SW_LAYER_CONV2D, &pw, NULL, 0); /* read by the BN and by the Add */
    add_node(m, "shared_bn", SW_LAYER_BATCHNORM2D, &bn, NULL, 0);
    add_node(m, "join", SW_LAYER_ADD, &plain, (const char *[]){"shared_bn", "shared"}, 2);
    add_node(m, "out", SW_LAYER_RELU, &relu, NULL, 0);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 8);
    randomize_batchnorms(m, 9);
    const sw_fusion_plan *plan = &m->fusion_plan;
    assert_int_equal(plan->n_chains, 3); /* dw-bn-relu, pw-bn (its BN feeds a second conv), add-relu */
    assert_int_equal(plan->chain_at[sw_model_find(m, "shared")], -1);
    assert_int_equal(plan->member_of[sw_model_find(m, "dw_relu")], plan->chain_at[0]);

    sw_shape xs = sw_shape_4d(2, 4, 9, 9);
    sw_tensor x;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    sw_test_fill_uniform(&x, 10, -1, 1);
    assert_true(fused_vs_unfused(m, &x) < 1e-5f);

    /* a hook on the BN: that chain runs layer by layer, and its BN output is its own */
    int calls = 0;
    sw_node_hooks hooks = {.ctx = &calls, .after_forward = pass_through};
    int dw_bn = sw_model_find(m, "dw_bn"), dw_relu = sw_model_find(m, "dw_relu");
    m->nodes[dw_bn].hooks = &hooks;
    sw_model_set_inference_fusion(m, true);
    const sw_tensor *out = NULL;
    assert_int_equal(sw_model_forward(m, &x, &out), SW_OK);
    assert_int_equal(calls, 1);
    assert_ptr_not_equal(m->outs[dw_bn].data, m->outs[dw_relu].data);
    assert_true(m->last_forward_fused); /* the other chains still fused */
    m->nodes[dw_bn].hooks = NULL;

    assert_int_equal(sw_model_forward(m, &x, &out), SW_OK);
    assert_ptr_equal(m->outs[dw_bn].data, m->outs[dw_relu].data);
    sw_tensor dl;
    assert_int_equal(sw_tensor_init(&dl, &out->shape), SW_OK);
    assert_int_equal(sw_model_backward(m, &dl), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "training mode"));
    sw_tensor_deinit(&dl);
    sw_tensor_deinit(&x);
    sw_model_free(m);
}

/* A wrongly shaped input is refused with both shapes in the message. */
static void test_model_forward_wrong_shape(void **state) {
    (void)state;
    sw_model *m = NULL;
    assert_int_equal(sw_zoo_build("fmnist_cnn", 1, &m), SW_OK);
    sw_shape xs = sw_shape_4d(2, 3, 32, 32);
    sw_tensor x;
    assert_int_equal(sw_tensor_init(&x, &xs), SW_OK);
    const sw_tensor *out = NULL;
    assert_int_equal(sw_model_forward(m, &x, &out), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "[2, 3, 32, 32]"));
    sw_tensor_deinit(&x);
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_zoo_param_counts),
        cmocka_unit_test(test_model_zoo_unknown_name),
        cmocka_unit_test(test_model_cnn_flops),
        cmocka_unit_test(test_model_add_errors),
        cmocka_unit_test(test_model_module_tree),
        cmocka_unit_test(test_model_clone_same_output),
        cmocka_unit_test(test_model_init_deterministic),
        cmocka_unit_test(test_model_arena_steady_state),
        cmocka_unit_test(test_model_forward_wrong_shape),
        cmocka_unit_test(test_model_grad_plan_resnet),
        cmocka_unit_test(test_model_grad_plan_dag_gradients),
        cmocka_unit_test(test_model_inference_fusion_zoo),
        cmocka_unit_test(test_model_inference_fusion_rules),
        cmocka_unit_test(test_model_inference_fusion_pools),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
