/* The audit log's storage on the state store (its audit_log and audit_heads tables). */
#ifndef TANDEM_TRUST_AUDIT_STORE_H
#define TANDEM_TRUST_AUDIT_STORE_H

#include "store/store.h"
#include "trust/audit.h"

/* An audit_storage reading and writing `s` (which must outlive it). */
struct audit_storage audit_store_storage(struct store *s);

#endif
