/* cp-call-options-private.h: what the channel's units read from and write
 * into a CpCallOptions beyond its public API
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-call-options.h"

G_BEGIN_DECLS

gboolean  cp_call_options_get_codec_is_set       (CpCallOptions      *options);
gboolean  cp_call_options_get_compression_is_set (CpCallOptions      *options);
/* Replaces the response headers/trailers (copies; either may be NULL). */
void      cp_call_options_set_response           (CpCallOptions      *options,
                                                  SoupMessageHeaders *headers,
                                                  SoupMessageHeaders *trailers);
/* Appends every header of @src (NULL = none) to @dest. */
void      cp_headers_copy_into                   (SoupMessageHeaders *dest,
                                                  SoupMessageHeaders *src);

G_END_DECLS
