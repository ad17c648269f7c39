/* Golden-logit comparison shared by the architecture tests (fixtures README tolerances). */
#ifndef TANDEM_TEST_GOLDEN_H
#define TANDEM_TEST_GOLDEN_H

/* Tolerance class of a fixture's weights. */
enum golden_class {
    GOLDEN_FLOAT,
    GOLDEN_BF16,
    GOLDEN_QUANT,
};

/* Runs ../shared/fixtures/models/<name>.gguf on golden/prompt-0.txt, checks the logits of
 * every position and the greedy continuation against golden/<name>.seed0.bin; reports
 * failures through the test framework. */
void golden_check(const char *name, enum golden_class cls);
/* The same with explicit paths under ../shared; the prompt file holds the token ids. */
void golden_check_files(const char *name, const char *model_rel, const char *golden_rel,
                        const char *prompt_rel, enum golden_class cls);

#endif
