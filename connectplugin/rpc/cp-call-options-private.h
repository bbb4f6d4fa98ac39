/* cp-call-options-private.h: what the channel's units read from and write
 * into a CpCallOptions beyond its public API
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-call-options.h"

G_BEGIN_DECLS

gboolean  cp_call_options_get_codec_is_set       (CpCallOptions      *options);
gboolean  cp_call_options_get_compression_is_set (CpCallOptions      *options);
/* A call of the plugin system's own protocol (the handshake, health checks
 * and watches, plugin control) that a client makes about the server rather
 * than for its user: the channel's circuit breaker neither stops it nor
 * hears its outcome, so that health reports keep coming while the circuit
 * is open; the channel's retry policy and interceptors (its client's and
 * its own) leave it alone too (the options' own still apply). get: FALSE
 * for NULL options. */
void      cp_call_options_set_circuit_breaker_exempt (CpCallOptions *options,
                                                      gboolean       exempt);
gboolean  cp_call_options_get_circuit_breaker_exempt (CpCallOptions *options);
/* The interceptors added with cp_call_options_add_interceptor (), or NULL
 * (also for NULL options). Immutable: replaced, not changed, by an add. */
GPtrArray *cp_call_options_get_interceptors      (CpCallOptions      *options);
/* Replaces the response headers/trailers (copies; either may be NULL). */
void      cp_call_options_set_response           (CpCallOptions      *options,
                                                  SoupMessageHeaders *headers,
                                                  SoupMessageHeaders *trailers);
/* The options' cancellable (if any) cancels @target: @cancel (@target) is
 * called in @context, whichever thread cancels, while @target lives (a
 * weak reference). Returns the handler id for
 * cp_call_options_disconnect_cancel (), 0 when there is nothing to
 * disconnect (no cancellable, or already cancelled: @cancel was scheduled). */
gulong    cp_call_options_connect_cancel         (CpCallOptions      *options,
                                                  GObject            *target,
                                                  GMainContext       *context,
                                                  void              (*cancel) (gpointer target));
void      cp_call_options_disconnect_cancel      (CpCallOptions      *options,
                                                  gulong              id);
/* Appends every header of @src (NULL = none) to @dest. */
void      cp_headers_copy_into                   (SoupMessageHeaders *dest,
                                                  SoupMessageHeaders *src);

G_END_DECLS
