/* cp-call-settings-private.h: the settings of one call (channel defaults
 * overridden by CpCallOptions) and how a call's request is encoded
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

#include "cp-channel.h"
#include "cp-call-options.h"

G_BEGIN_DECLS

typedef struct {
  CpCodec             codec;
  CpCompression       compression;      /* of request messages */
  gint64              deadline;         /* monotonic µs; 0 = none */
  gsize               max_receive_size; /* 0 = unlimited */
  gboolean            use_get;
  SoupMessageHeaders *metadata;         /* user request headers; owned */
} CpCallSettings;

/* @unary: whether the channel's default timeout applies (streams get no
 * default deadline). */
void      cp_call_settings_init       (CpCallSettings *settings,
                                       CpChannel      *channel,
                                       CpCallOptions  *options,
                                       gboolean        unary);
void      cp_call_settings_clear      (CpCallSettings *settings);

/* Request headers of a streaming call (Content-Type application/connect+X,
 * Connect-Protocol-Version, Connect-(Accept-)Content-Encoding,
 * Accept-Encoding: identity, user metadata). Connect-Timeout-Ms is added at
 * send time by the exchange (cp_channel_exchange_start()). */
SoupMessageHeaders *cp_call_settings_stream_headers (CpCallSettings *settings);

/* Serializes @message as one envelope (compressed per settings) and appends
 * it to @out. */
gboolean  cp_call_settings_append_envelope (CpCallSettings *settings,
                                            CpMessage      *message,
                                            GByteArray     *out,
                                            GError        **error);

G_END_DECLS
