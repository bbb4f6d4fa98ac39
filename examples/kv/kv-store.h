/* kv-store.h: the KV service (kv.v1.KVService) on the generated Skeleton
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The implementation shared by kv-server (served by a CpRpcServer) and
 * kv-plugin (served by a CpServer as the "kv" plugin): an in-memory store
 * and the open Watch calls, in a subclass of the generated
 * KvKVServiceSkeleton.
 */
#pragma once

#include "kv.cp.h"

G_BEGIN_DECLS

#define EXAMPLE_TYPE_KV_STORE (example_kv_store_get_type ())
G_DECLARE_FINAL_TYPE (ExampleKvStore, example_kv_store, EXAMPLE, KV_STORE, KvKVServiceSkeleton)

/* An empty store; it logs each call with g_debug () (domain "kv"). */
ExampleKvStore *example_kv_store_new         (void);

/* Ends every open Watch call with OK: a graceful shutdown waits for the
 * running calls, and a Watch runs until it is ended. */
void            example_kv_store_end_watches (ExampleKvStore *self);

G_END_DECLS
