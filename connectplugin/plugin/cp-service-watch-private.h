/* cp-service-watch-private.h: making a CpServiceWatch (cp-host-link.c)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-service-watch.h"
#include "cp-channel.h"

G_BEGIN_DECLS

/* Starts ServiceRegistry.WatchService on @host_channel (which carries the
 * runtime headers) in the thread-default context. */
CpServiceWatch *cp_service_watch_new_internal (CpChannel  *host_channel,
                                               const char *service_type);

G_END_DECLS
