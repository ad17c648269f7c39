/* libFuzzer: chat template text (untrusted, from GGUF files) through parse + render. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tokenizer/chat_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct chat_message msgs[] = {
        {"system", "You are a helpful assistant"}, {"user", "Hello"},
        {"assistant", "Hi there"}, {"user", "Who are you"},
    };
    struct chat_template *t = NULL;
    char err[256];
    if (chat_template_new_len(&t, (const char *)data, size, err, sizeof(err)))
        return 0;
    for (int strict = 0; strict < 2; strict++) {
        struct chat_apply_params p = {.messages = msgs, .n_messages = 4, .add_generation_prompt = strict,
                                      .bos_token = "<s>", .eos_token = "</s>", .strict = strict,
                                      .max_output = 1 << 16, .now = 1721995200};
        struct chat_prompt pr = {0};
        int rc = chat_template_apply(t, &p, &pr, err, sizeof(err));
        if (rc == 0 && (!pr.text || strlen(pr.text) > pr.len))
            abort();
        if (!strict && rc != 0 && rc != CHAT_E_LIMIT)
            abort(); /* non-strict must always produce a prompt (the output bound aside) */
        chat_prompt_free(&pr);
    }
    chat_template_free(t);
    return 0;
}
