/* cp-service-descriptor.c: describes one RPC service and its generated classes
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-service-descriptor.h"

#include <string.h>

#include "cp-proxy.h"
#include "cp-skeleton.h"

/**
 * CpServiceDescriptor:
 *
 * Describes one RPC service: its full name (`kv.v1.KVService`), the URL
 * path prefix of its procedures (`/kv.v1.KVService/`), a [struct@ConnectPlugin.MethodInfo] per
 * method, and the [class@ConnectPlugin.Proxy] and [class@ConnectPlugin.Skeleton] subclasses generated for it.
 *
 * protoc-gen-cp generates a function returning the descriptor of each
 * service (`kv_kv_service_get_descriptor()`); the plugin system uses it to
 * register a skeleton on a server and to make proxies for a client.
 *
 * A descriptor is filled in once ([method@ConnectPlugin.ServiceDescriptor.add_method]) and
 * read-only afterwards; it may then be shared between threads.
 */
struct _CpServiceDescriptor
{
  gatomicrefcount ref_count;
  char *full_name;
  char *path;
  GType proxy_type;
  GType skeleton_type;
  GPtrArray *methods;         /* of CpMethodInfo, owned */
  GHashTable *by_name;        /* method name → CpMethodInfo (borrowed) */
  GBytes *file_descriptor_set;  /* for server reflection, or NULL */
};

G_DEFINE_BOXED_TYPE (CpServiceDescriptor, cp_service_descriptor,
                     cp_service_descriptor_ref, cp_service_descriptor_unref)

static gboolean
full_name_is_valid (const char *full_name)
{
  return full_name != NULL && full_name[0] != '\0' && full_name[0] != '.' &&
         strchr (full_name, '/') == NULL && g_utf8_validate (full_name, -1, NULL);
}

/**
 * cp_service_descriptor_new:
 * @full_name: the fully qualified service name, e.g. `kv.v1.KVService`
 * @proxy_type: the [class@ConnectPlugin.Proxy] subclass generated for the service, or
 *   %G_TYPE_INVALID if there is none
 * @skeleton_type: the [class@ConnectPlugin.Skeleton] subclass generated for the service, or
 *   %G_TYPE_INVALID if there is none
 *
 * Creates a service description without methods; add them with
 * [method@ConnectPlugin.ServiceDescriptor.add_method].
 *
 * Returns: (transfer full): a new [struct@ConnectPlugin.ServiceDescriptor]
 */
CpServiceDescriptor *
cp_service_descriptor_new (const char *full_name,
                           GType       proxy_type,
                           GType       skeleton_type)
{
  CpServiceDescriptor *self;

  g_return_val_if_fail (full_name_is_valid (full_name), NULL);
  g_return_val_if_fail (proxy_type == G_TYPE_INVALID ||
                        g_type_is_a (proxy_type, CP_TYPE_PROXY), NULL);
  g_return_val_if_fail (skeleton_type == G_TYPE_INVALID ||
                        g_type_is_a (skeleton_type, CP_TYPE_SKELETON), NULL);

  self = g_new0 (CpServiceDescriptor, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->full_name = g_strdup (full_name);
  self->path = g_strconcat ("/", full_name, "/", NULL);
  self->proxy_type = proxy_type;
  self->skeleton_type = skeleton_type;
  self->methods = g_ptr_array_new_with_free_func ((GDestroyNotify) cp_method_info_unref);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return self;
}

/**
 * cp_service_descriptor_ref:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Takes a reference.
 *
 * Returns: (transfer full): @descriptor
 */
CpServiceDescriptor *
cp_service_descriptor_ref (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, NULL);

  g_atomic_ref_count_inc (&descriptor->ref_count);
  return descriptor;
}

/**
 * cp_service_descriptor_unref:
 * @descriptor: (transfer full): a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Releases a reference; the last one frees the descriptor.
 */
void
cp_service_descriptor_unref (CpServiceDescriptor *descriptor)
{
  g_return_if_fail (descriptor != NULL);

  if (!g_atomic_ref_count_dec (&descriptor->ref_count))
    return;
  g_hash_table_unref (descriptor->by_name);
  g_ptr_array_unref (descriptor->methods);
  g_clear_pointer (&descriptor->file_descriptor_set, g_bytes_unref);
  g_free (descriptor->path);
  g_free (descriptor->full_name);
  g_free (descriptor);
}

/**
 * cp_service_descriptor_add_method:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 * @info: a method of the service: its procedure must be
 *   `/<full name>/<method>`, and no other method of @descriptor may have
 *   the same name
 *
 * Adds a method to the service (the descriptor takes a reference on @info).
 * Methods keep the order they were added in. Only call this while building
 * the descriptor, before sharing it.
 */
void
cp_service_descriptor_add_method (CpServiceDescriptor *descriptor,
                                  CpMethodInfo        *info)
{
  const char *name;

  g_return_if_fail (descriptor != NULL);
  g_return_if_fail (info != NULL);
  g_return_if_fail (g_str_equal (cp_method_info_get_service_name (info), descriptor->full_name));

  name = cp_method_info_get_method_name (info);
  g_return_if_fail (!g_hash_table_contains (descriptor->by_name, name));

  g_ptr_array_add (descriptor->methods, cp_method_info_ref (info));
  g_hash_table_insert (descriptor->by_name, (gpointer) name, info);
}

/**
 * cp_service_descriptor_get_full_name:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets the fully qualified name of the service.
 *
 * Returns: the name, e.g. `kv.v1.KVService`
 */
const char *
cp_service_descriptor_get_full_name (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, NULL);

  return descriptor->full_name;
}

/**
 * cp_service_descriptor_get_path:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets the URL path prefix of the service's procedures.
 *
 * Returns: the path, e.g. `/kv.v1.KVService/`
 */
const char *
cp_service_descriptor_get_path (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, NULL);

  return descriptor->path;
}

/**
 * cp_service_descriptor_get_proxy_type:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets the client class of the service: create an instance with
 * `g_object_new (type, "channel", channel, NULL)`.
 *
 * Returns: the [class@ConnectPlugin.Proxy] subclass, or %G_TYPE_INVALID
 */
GType
cp_service_descriptor_get_proxy_type (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, G_TYPE_INVALID);

  return descriptor->proxy_type;
}

/**
 * cp_service_descriptor_get_skeleton_type:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets the server class of the service, the base class of its
 * implementations.
 *
 * Returns: the [class@ConnectPlugin.Skeleton] subclass, or %G_TYPE_INVALID
 */
GType
cp_service_descriptor_get_skeleton_type (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, G_TYPE_INVALID);

  return descriptor->skeleton_type;
}

/**
 * cp_service_descriptor_get_methods:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets the methods of the service, in declaration order.
 *
 * Returns: (transfer none) (element-type CpMethodInfo): the methods
 */
GPtrArray *
cp_service_descriptor_get_methods (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, NULL);

  return descriptor->methods;
}

/**
 * cp_service_descriptor_lookup_method:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 * @method_name: a method name, e.g. `Get`
 *
 * Finds a method of the service by name.
 *
 * Returns: (transfer none) (nullable): the method, or %NULL if the service
 *   has no method called @method_name
 */
CpMethodInfo *
cp_service_descriptor_lookup_method (CpServiceDescriptor *descriptor,
                                     const char          *method_name)
{
  g_return_val_if_fail (descriptor != NULL, NULL);
  g_return_val_if_fail (method_name != NULL, NULL);

  return g_hash_table_lookup (descriptor->by_name, method_name);
}

/**
 * cp_service_descriptor_set_file_descriptor_set:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 * @file_descriptor_set: (nullable): a serialized `google.protobuf.FileDescriptorSet`
 *   with the `.proto` file that declares the service and every file it
 *   imports, imports first
 *
 * Gives the service its schema, which a server with
 * [property@ConnectPlugin.Server:reflection-enabled] answers gRPC server
 * reflection requests with. The code protoc-gen-cp generates calls this
 * with the descriptors it compiles in; a hand-written descriptor may leave
 * it unset (its service is then listed, but not described).
 */
void
cp_service_descriptor_set_file_descriptor_set (CpServiceDescriptor *descriptor,
                                               GBytes              *file_descriptor_set)
{
  g_return_if_fail (descriptor != NULL);

  if (file_descriptor_set != NULL)
    g_bytes_ref (file_descriptor_set);
  g_clear_pointer (&descriptor->file_descriptor_set, g_bytes_unref);
  descriptor->file_descriptor_set = file_descriptor_set;
}

/**
 * cp_service_descriptor_get_file_descriptor_set:
 * @descriptor: a [struct@ConnectPlugin.ServiceDescriptor]
 *
 * Gets what [method@ConnectPlugin.ServiceDescriptor.set_file_descriptor_set]
 * set.
 *
 * Returns: (transfer none) (nullable): the serialized
 *   `google.protobuf.FileDescriptorSet` of the service's `.proto` file and
 *   its imports, or %NULL
 */
GBytes *
cp_service_descriptor_get_file_descriptor_set (CpServiceDescriptor *descriptor)
{
  g_return_val_if_fail (descriptor != NULL, NULL);

  return descriptor->file_descriptor_set;
}
