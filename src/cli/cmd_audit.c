/* tandem audit: verify the tamper-evident request log, print inclusion proofs, make keys. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "store/store.h"
#include "trust/audit.h"
#include "trust/audit_store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tandem audit verify [--pubkey PEM] [--db PATH]\n"
            "       tandem audit proof INDEX [--size N] [--db PATH]\n"
            "       tandem audit keygen FILE\n"
            "  verify   recomputes every record's hash, the Merkle roots (RFC 6962) and the signed\n"
            "           tree heads; reports the first tampered or missing entry (exit 1)\n"
            "  proof    prints the inclusion proof of entry INDEX as JSON (against the latest\n"
            "           signed head, or the tree of the first N entries)\n"
            "  keygen   writes a new Ed25519 signing key to FILE (private, mode 0600) and\n"
            "           FILE.pub; name FILE as audit.signing_key in the configuration\n"
            "  The database is $TANDEM_HOME/tandem.db unless --db names another.\n");
}

static struct store *open_db(const char *db)
{
    struct store *s = NULL;
    char err[512] = "";
    const int e = store_open_path(&s, db, false, err, sizeof(err));
    if (e)
        fprintf(stderr, "tandem audit: %s\n",
                e == STORE_E_NOT_FOUND ? "no database yet (nothing was served)" : err);
    return s;
}

static int do_verify(const char *db, const char *pub)
{
    struct audit_key *key = NULL;
    int rc;
    if (pub && (rc = audit_key_load(pub, &key))) {
        fprintf(stderr, "tandem audit: %s: %s\n", pub, audit_strerror(rc));
        return 1;
    }
    struct store *s = open_db(db);
    if (!s) {
        audit_key_free(key);
        return 1;
    }
    struct audit_storage st = audit_store_storage(s);
    struct audit_report rep;
    memset(&rep, 0, sizeof(rep));
    rc = audit_verify(&st, key, &rep);
    if (rc == 0) {
        printf("audit log OK: %" PRIu64 " entries, %" PRIu64 " signed heads verified%s\n",
               rep.entries, rep.heads_ok, key ? "" : " (roots only: give --pubkey to check signatures)");
    } else if (rc == AUDIT_E_TAMPERED) {
        if (rep.head)
            printf("audit log TAMPERED: tree head of size %" PRIu64 ": %s: %s\n", rep.head_size,
                   audit_fault_name(rep.fault), rep.detail);
        else
            printf("audit log TAMPERED at entry %" PRIu64 " (row idx=%" PRIu64 " of audit_log): %s: %s\n",
                   rep.idx, rep.idx, audit_fault_name(rep.fault), rep.detail);
        printf("%" PRIu64 " entries before it verified\n", rep.entries_ok);
    } else {
        fprintf(stderr, "tandem audit: verify failed: %s\n", audit_strerror(rc));
    }
    store_close(s);
    audit_key_free(key);
    return rc == 0 ? 0 : 1;
}

static int do_proof(const char *db, uint64_t idx, uint64_t size)
{
    struct store *s = open_db(db);
    if (!s)
        return 1;
    struct audit_storage st = audit_store_storage(s);
    struct audit_inclusion p;
    memset(&p, 0, sizeof(p));
    int rc = audit_inclusion_proof(&st, idx, size, &p);
    if (rc == AUDIT_E_NOTFOUND && size == 0) {
        /* No signed head yet: prove against the whole log as it is (unsigned). */
        const int64_t n = store_audit_count(s);
        if (n > (int64_t)idx) {
            fprintf(stderr, "tandem audit: no signed tree head yet; the proof is against the "
                            "%" PRId64 " entries stored (unsigned)\n", n);
            rc = audit_inclusion_proof(&st, idx, (uint64_t)n, &p);
        }
    }
    char *json = NULL;
    if (!rc)
        rc = audit_inclusion_to_json(&p, &json);
    if (rc)
        fprintf(stderr, "tandem audit: proof of entry %" PRIu64 ": %s\n", idx, audit_strerror(rc));
    else
        printf("%s\n", json);
    free(json);
    store_close(s);
    return rc ? 1 : 0;
}

static int do_keygen(const char *path)
{
    struct audit_key *k = NULL;
    char pub[4096];
    int rc = audit_key_generate(&k);
    if (!rc && snprintf(pub, sizeof(pub), "%s.pub", path) >= (int)sizeof(pub))
        rc = AUDIT_E_ARG;
    if (!rc)
        rc = audit_key_save(k, path, true);
    if (!rc)
        rc = audit_key_save(k, pub, false);
    if (rc) {
        fprintf(stderr, "tandem audit: keygen %s: %s (an existing file is never overwritten)\n",
                path, audit_strerror(rc));
    } else {
        char id[2 * AUDIT_HASH_SIZE + 1];
        audit_key_id(k, id);
        printf("wrote %s (private, keep it secret) and %s (public)\nkey id %s\n", path, pub, id);
    }
    audit_key_free(k);
    return rc ? 1 : 0;
}

int cmd_audit(int argc, char **argv)
{
    static const char *cmd = "audit";
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *db = NULL, *pub = NULL, *pos = NULL;
    int size = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--db") || !strcmp(a, "--pubkey") || !strcmp(a, "--size")) {
            const char *v = args_value(cmd, argc, argv, &i);
            if (!v)
                return 2;
            if (!strcmp(a, "--db"))
                db = v;
            else if (!strcmp(a, "--pubkey"))
                pub = v;
            else if (args_int(cmd, a, v, 1, INT32_MAX, &size))
                return 2;
        } else if (a[0] != '-' && !pos) {
            pos = a;
        } else {
            fprintf(stderr, "tandem audit: unexpected argument %s\n", a);
            return 2;
        }
    }
    if (!strcmp(sub, "verify") && !pos)
        return do_verify(db, pub);
    if (!strcmp(sub, "proof") && pos) {
        int idx = 0;
        if (args_int(cmd, "INDEX", pos, 0, INT32_MAX, &idx))
            return 2;
        return do_proof(db, (uint64_t)idx, (uint64_t)size);
    }
    if (!strcmp(sub, "keygen") && pos)
        return do_keygen(pos);
    usage(stderr);
    return 2;
}
