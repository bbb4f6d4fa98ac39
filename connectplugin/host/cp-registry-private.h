/* cp-registry-private.h: the service registry's request validation and
 * test hooks
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The validation is pure (cp-registry-validate.c, no broker state) so the
 * fuzz target links it alone. Limits and messages are connect-plugin-go's
 * validation.go.
 */
#pragma once

#include "cp-broker-private.h"
#include "connectplugin/protocol/registry.cp.h"

G_BEGIN_DECLS

#define CP_REGISTRY_MAX_METADATA_ENTRIES 100
#define CP_REGISTRY_MAX_METADATA_KEY_LEN 256
#define CP_REGISTRY_MAX_METADATA_VALUE_LEN 4096
#define CP_REGISTRY_MAX_SERVICE_TYPE_LEN 128
#define CP_REGISTRY_MAX_VERSION_LEN 64
#define CP_REGISTRY_MAX_ENDPOINT_PATH_LEN 256

/* Each sets CP_ERROR_INVALID_ARGUMENT with the original's message. */
gboolean cp_registry_validate_service_type  (const char  *service_type,
                                             GError     **error);
gboolean cp_registry_validate_version       (const char  *version,
                                             GError     **error);
gboolean cp_registry_validate_endpoint_path (const char  *path,
                                             GError     **error);
/* @metadata: char* → char* (NULL: empty). Keys are checked in sorted order
 * so the message does not depend on hash order. */
gboolean cp_registry_validate_metadata      (GHashTable  *metadata,
                                             GError     **error);
/* The four above, in the original's order, plus `base_url` (when present)
 * an absolute http(s) URL: the router connects to it. */
gboolean cp_registry_validate_register      (CpRegisterServiceRequest *request,
                                             GError     **error);

/* Test hooks: fix the random draws; the most events queued for one watcher
 * now; how many times a watcher's queue was collapsed to a resync; the
 * number of open watchers. */
void     cp_registry_set_seed               (CpRegistry  *registry,
                                             guint32      seed);
guint    cp_registry_get_max_watch_backlog  (CpRegistry  *registry);
guint    cp_registry_get_n_resyncs          (CpRegistry  *registry);
guint    cp_registry_get_n_watchers         (CpRegistry  *registry);

G_END_DECLS
