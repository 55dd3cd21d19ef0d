/* options.c - shared option tables, handlers and help text. */
#include "cli/options.h"

#include <stdlib.h>
#include <string.h>

const struct option sw_common_options[] = {
    {"threads", required_argument, NULL, SW_OPT_THREADS},
    {"seed", required_argument, NULL, SW_OPT_SEED},
    {"data", required_argument, NULL, SW_OPT_DATA},
    {"dataset", required_argument, NULL, SW_OPT_DATASET},
    {"subset", required_argument, NULL, SW_OPT_SUBSET},
    {"test-subset", required_argument, NULL, SW_OPT_TEST_SUBSET},
    {"log", required_argument, NULL, SW_OPT_LOG},
    {"quiet", no_argument, NULL, SW_OPT_QUIET},
    {"help", no_argument, NULL, SW_OPT_HELP},
    {0, 0, 0, 0},
};

const struct option sw_training_options[] = {
    {"epochs", required_argument, NULL, SW_OPT_EPOCHS},
    {"steps", required_argument, NULL, SW_OPT_STEPS},
    {"batch-size", required_argument, NULL, SW_OPT_BATCH_SIZE},
    {"optimizer", required_argument, NULL, SW_OPT_OPTIMIZER},
    {"lr", required_argument, NULL, SW_OPT_LR},
    {"momentum", required_argument, NULL, SW_OPT_MOMENTUM},
    {"weight-decay", required_argument, NULL, SW_OPT_WEIGHT_DECAY},
    {"nesterov", no_argument, NULL, SW_OPT_NESTEROV},
    {"no-nesterov", no_argument, NULL, SW_OPT_NO_NESTEROV},
    {"schedule", required_argument, NULL, SW_OPT_SCHEDULE},
    {"warmup", required_argument, NULL, SW_OPT_WARMUP},
    {"step-size", required_argument, NULL, SW_OPT_STEP_SIZE},
    {"gamma", required_argument, NULL, SW_OPT_GAMMA},
    {"augment", required_argument, NULL, SW_OPT_AUGMENT},
    {0, 0, 0, 0},
};

void sw_options_join(struct option *dst, int cap, const struct option *const *tables, int n) {
    int at = 0;
    for (int t = 0; t < n; t++) {
        for (const struct option *o = tables[t]; o->name; o++) {
            SW_ASSERT(at < cap - 1);
            dst[at++] = *o;
        }
    }
    dst[at] = (struct option){0, 0, 0, 0};
}

int sw_common_option(const char *cmd, int id, const char *arg, sw_cli_common *c) {
    long v;
    switch (id) {
    case SW_OPT_THREADS:
        if (!sw_cli_parse_int(cmd, "--threads", arg, 0, 1024, &v)) return -1;
        c->threads = (int)v;
        return 1;
    case SW_OPT_SEED:
        if (!sw_cli_parse_int(cmd, "--seed", arg, 0, 2147483647L, &v)) return -1;
        c->seed = (unsigned long)v;
        return 1;
    case SW_OPT_DATA:
        c->data_dir = arg;
        return 1;
    case SW_OPT_DATASET: {
        sw_dataset_kind kind;
        if (sw_dataset_kind_from_name(arg, &kind) != SW_OK) {
            sw_cli_usage_error(cmd, "--dataset is fashion-mnist, mnist or cifar10, not \"%s\"",
                               arg);
            return -1;
        }
        c->dataset = arg;
        return 1;
    }
    case SW_OPT_SUBSET:
        if (!sw_cli_parse_int(cmd, "--subset", arg, 1, 100000000, &v)) return -1;
        c->subset = (int)v;
        return 1;
    case SW_OPT_TEST_SUBSET:
        if (!sw_cli_parse_int(cmd, "--test-subset", arg, 1, 100000000, &v)) return -1;
        c->test_subset = (int)v;
        return 1;
    case SW_OPT_LOG:
        c->log_path = arg;
        return 1;
    case SW_OPT_QUIET:
        c->quiet = true;
        return 1;
    default:
        return 0;
    }
}

void sw_training_plan_defaults(sw_training_plan *plan, int default_epochs) {
    *plan = (sw_training_plan){.cfg = sw_train_config_default(), .epochs = default_epochs,
                               .steps = -1};
}

int sw_training_option(const char *cmd, int id, const char *arg, sw_training_plan *plan) {
    long v;
    double f;
    sw_train_config *cfg = &plan->cfg;
    switch (id) {
    case SW_OPT_EPOCHS:
        if (!sw_cli_parse_int(cmd, "--epochs", arg, 0, 100000, &v)) return -1;
        plan->epochs = (int)v;
        return 1;
    case SW_OPT_STEPS:
        if (!sw_cli_parse_int(cmd, "--steps", arg, 1, 1000000000L, &v)) return -1;
        plan->steps = v;
        return 1;
    case SW_OPT_BATCH_SIZE:
        if (!sw_cli_parse_int(cmd, "--batch-size", arg, 1, 65536, &v)) return -1;
        cfg->batch_size = (int)v;
        return 1;
    case SW_OPT_OPTIMIZER: {
        sw_optim_kind kind;
        if (sw_optim_kind_from_name(arg, &kind) != SW_OK) {
            sw_cli_usage_error(cmd, "--optimizer is sgd, adam or adamw, not \"%s\"", arg);
            return -1;
        }
        float lr = cfg->optim.lr;
        cfg->optim = sw_optim_config_default(kind);
        if (plan->lr_given) cfg->optim.lr = lr;
        return 1;
    }
    case SW_OPT_LR:
        if (!sw_cli_parse_float(cmd, "--lr", arg, 0, 100, &f)) return -1;
        cfg->optim.lr = (float)f;
        plan->lr_given = true;
        return 1;
    case SW_OPT_MOMENTUM:
        if (!sw_cli_parse_float(cmd, "--momentum", arg, 0, 1, &f)) return -1;
        cfg->optim.momentum = (float)f;
        return 1;
    case SW_OPT_WEIGHT_DECAY:
        if (!sw_cli_parse_float(cmd, "--weight-decay", arg, 0, 1, &f)) return -1;
        cfg->optim.weight_decay = (float)f;
        return 1;
    case SW_OPT_NESTEROV:
        cfg->optim.nesterov = true;
        return 1;
    case SW_OPT_NO_NESTEROV:
        cfg->optim.nesterov = false;
        return 1;
    case SW_OPT_SCHEDULE: {
        sw_lr_kind kind;
        if (sw_lr_kind_from_name(arg, &kind) != SW_OK) {
            sw_cli_usage_error(cmd, "--schedule is constant, step or cosine, not \"%s\"", arg);
            return -1;
        }
        cfg->lr.kind = kind;
        return 1;
    }
    case SW_OPT_WARMUP:
        if (!sw_cli_parse_int(cmd, "--warmup", arg, 0, 1000000000L, &v)) return -1;
        cfg->lr.warmup_steps = v;
        return 1;
    case SW_OPT_STEP_SIZE:
        if (!sw_cli_parse_int(cmd, "--step-size", arg, 1, 1000000000L, &v)) return -1;
        cfg->lr.step_size = v;
        return 1;
    case SW_OPT_GAMMA:
        if (!sw_cli_parse_float(cmd, "--gamma", arg, 0, 1, &f)) return -1;
        cfg->lr.gamma = (float)f;
        return 1;
    case SW_OPT_AUGMENT: {
        cfg->augment = (sw_augment){0};
        char buf[128];
        snprintf(buf, sizeof buf, "%s", arg);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, "crop") == 0)
                cfg->augment.crop_padding = 2;
            else if (strcmp(tok, "flip") == 0)
                cfg->augment.horizontal_flip = true;
            else if (strcmp(tok, "none") != 0) {
                sw_cli_usage_error(cmd, "--augment takes crop, flip or none (comma-separated), "
                                        "not \"%s\"", tok);
                return -1;
            }
        }
        return 1;
    }
    default:
        return 0;
    }
}

void sw_print_common_help(FILE *out) {
    fprintf(out,
            "common options:\n"
            "  --data DIR           dataset folder (default for Fashion-MNIST: %s)\n"
            "  --dataset NAME       fashion-mnist (default), mnist or cifar10\n"
            "  --subset N           use the first N training examples (quick runs)\n"
            "  --test-subset N      use the first N test examples\n"
            "  --threads N          threads for BLAS and our loops (default: all cores)\n"
            "  --seed N             seed for initialisation, shuffling, augmentation (default 0)\n"
            "  --log FILE.jsonl     write one JSON metric event per line\n"
            "  --quiet              no progress output\n"
            "  -h, --help           this help\n",
            SW_FASHION_MNIST_DEFAULT_DIR);
}

void sw_print_training_help(FILE *out, int default_epochs) {
    sw_train_config d = sw_train_config_default();
    fprintf(out,
            "training options:\n"
            "  --epochs N           epochs to train (default %d)\n"
            "  --steps N            stop after N optimizer steps (with --epochs: whichever first)\n"
            "  --batch-size N       mini-batch size (default %d)\n"
            "  --optimizer NAME     sgd (default), adam or adamw\n"
            "  --lr X               learning rate (default %g for sgd, 0.001 for adam/adamw)\n"
            "  --momentum X         SGD momentum (default %g)\n"
            "  --weight-decay X     weight decay (default %g)\n"
            "  --nesterov, --no-nesterov  Nesterov momentum for SGD (default %s)\n"
            "  --schedule NAME      learning-rate schedule: constant, step or cosine (default cosine)\n"
            "  --warmup N           linear warm-up steps (default %ld)\n"
            "  --step-size N, --gamma X   step schedule: multiply by gamma every N steps\n"
            "  --augment LIST       crop, flip or none, comma-separated (default none)\n",
            default_epochs, d.batch_size, (double)d.optim.lr, (double)d.optim.momentum,
            (double)d.optim.weight_decay, d.optim.nesterov ? "on" : "off", d.lr.warmup_steps);
}
