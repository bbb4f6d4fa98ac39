/* cp-router-private.h: the router unit's internals
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"
#include "cp-router-path.h"

G_BEGIN_DECLS

/* A GInputStream fed by the router with the caller's request body, read
 * (asynchronously only) by libsoup as the upstream request body. It holds
 * at most about one high-water mark of bytes: when cp_router_body_push()
 * returns TRUE the producer pauses, and @drained runs once the reader has
 * taken the queue below the low-water mark. */
#define CP_TYPE_ROUTER_BODY (cp_router_body_get_type ())
G_DECLARE_FINAL_TYPE (CpRouterBody, cp_router_body, CP, ROUTER_BODY, GInputStream)

CpRouterBody *cp_router_body_new   (GCallback     drained,  /* void (*)(gpointer) */
                                    gpointer      user_data);
gboolean      cp_router_body_push  (CpRouterBody *self,
                                    GBytes       *chunk);
void          cp_router_body_end   (CpRouterBody *self);
void          cp_router_body_fail  (CpRouterBody *self,
                                    const GError *error);
/* Forget the drained callback (the router call is going away). */
void          cp_router_body_detach (CpRouterBody *self);

G_END_DECLS
