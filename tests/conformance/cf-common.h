/* cf-common.h: helpers shared by the conformance server and client
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The runner talks to both programs with size-prefixed protobuf messages
 * (4-byte big-endian length, then the binary message) on stdin/stdout. The
 * programs read the runner's messages through the protobuf-c structs of the
 * generated classes (cp_message_get_c_message()) and build their answers as
 * protobuf-c structs on the stack or in a CfArena, packed and parsed back
 * into CpMessages where the engine needs one.
 */
#pragma once

#include <connectplugin.h>
#include <protobuf-c/protobuf-c.h>

#include "cf-protos.h"
#include "connectrpc/conformance/v1/client_compat.cp.h"
#include "connectrpc/conformance/v1/server_compat.cp.h"
#include "connectrpc/conformance/v1/client_compat.pb-c.h"
#include "connectrpc/conformance/v1/server_compat.pb-c.h"
#include "connectrpc/conformance/v1/service.pb-c.h"

G_BEGIN_DECLS

typedef Connectrpc__Conformance__V1__Header CfHeader;
typedef Google__Protobuf__Any CfAny;

#define CF_TYPE_URL_PREFIX "type.googleapis.com/"

/* Memory that lives as long as one answer being built: g_free()d at once. */
typedef GPtrArray CfArena;

CfArena    *cf_arena_new            (void);
gpointer    cf_arena_alloc          (CfArena    *arena,
                                     gsize       size);
char       *cf_arena_strdup         (CfArena    *arena,
                                     const char *s);
/* Keeps @bytes alive with the arena (transfer full); returns its data. */
ProtobufCBinaryData cf_arena_take_bytes (CfArena *arena,
                                         GBytes  *bytes);

/* Every header of @headers as Header messages, one per name (values in
 * order), allocated in @arena. */
void        cf_headers_to_pb        (CfArena             *arena,
                                     SoupMessageHeaders  *headers,
                                     CfHeader          ***out,
                                     size_t              *n_out);
/* Appends the Header messages to @headers. */
void        cf_headers_from_pb      (SoupMessageHeaders  *headers,
                                     CfHeader * const    *pb,
                                     size_t               n_pb);

/* An Any (type.googleapis.com/@full_name, @value) allocated in @arena. */
CfAny      *cf_any_new              (CfArena             *arena,
                                     const char          *full_name,
                                     GBytes              *value);
/* The message name of an Any's type URL (after its last '/'). */
const char *cf_any_type_name        (const CfAny         *any);

/* Packs a protobuf-c message (transfer full result). */
GBytes     *cf_pack                 (const ProtobufCMessage *message);
/* A message of @type whose field 1 is the message @payload (the shape of
 * every *Response of the conformance service). */
CpMessage  *cf_message_with_payload (GType                   type,
                                     const ProtobufCMessage *payload);

/* Reads one frame from fd 0; FALSE at EOF (with *error NULL) or on error. */
gboolean    cf_read_frame           (GBytes             **frame,
                                     GError             **error);
/* Writes one frame to stdout and flushes. */
void        cf_write_frame          (const ProtobufCMessage *message);

/* Makes sure the message classes of the conformance protos are registered
 * (for Any and cp_message_type_from_name()). */
void        cf_register_types       (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CfArena, g_ptr_array_unref)

G_END_DECLS
