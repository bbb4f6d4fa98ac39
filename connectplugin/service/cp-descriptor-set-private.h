/* cp-descriptor-set-private.h: the files of a serialized FileDescriptorSet
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Server reflection answers with FileDescriptorProtos, found by file name or
 * by a symbol they declare. The generated code compiles in a serialized
 * google.protobuf.FileDescriptorSet per .proto file
 * (cp_service_descriptor_set_file_descriptor_set ()); this reads just what
 * reflection needs from it, at the wire level (descriptor.proto is proto2,
 * which protoc-gen-cp does not generate): each file's name, its bytes, its
 * imports and the fully qualified names it declares (messages and nested
 * messages, enums, services, and methods as Service.Method). Any bytes are
 * safe (tests/service/fuzz-descriptor-set.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *name;           /* "kv.proto" */
  GBytes *bytes;        /* the serialized FileDescriptorProto */
  GPtrArray *imports;   /* of char *: the file names it imports */
  GPtrArray *symbols;   /* of char *: "kv.v1.GetRequest", "kv.v1.KVService.Get", … */
} CpDescriptorFile;

void       cp_descriptor_file_free (CpDescriptorFile *file);

/* The files of @set, in order (GPtrArray of CpDescriptorFile), or NULL
 * with @error (G_IO_ERROR_INVALID_DATA) for malformed bytes. */
GPtrArray *cp_descriptor_set_read  (GBytes  *set,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CpDescriptorFile, cp_descriptor_file_free)

G_END_DECLS
