/* cp-server-reflection.c: gRPC server reflection (v1 and v1alpha) on a CpServer
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * grpc.reflection.v1.ServerReflection/ServerReflectionInfo, served over
 * Connect like any bidirectional method (half-duplex over HTTP/1.1: each
 * request message read gets its answer as soon as it is read), and the same
 * under grpc.reflection.v1alpha, whose messages are the same on the wire.
 *
 * What it knows comes from the plugins' CpServiceDescriptors: their names
 * (list_services) and the FileDescriptorSets the generated code compiles
 * in (cp_service_descriptor_get_file_descriptor_set ()), read once, at the
 * first request, by cp_descriptor_set_read (): a file is found by its name
 * or by a symbol it declares, and is answered with every file it imports
 * (imports first), as grpc-go's server does for a client that has none.
 * Extensions are not indexed: those requests get NOT_FOUND.
 */
#include <string.h>

#include "cp-server-state-private.h"
#include "cp-descriptor-set-private.h"
#include "reflection.cp.h"
#include "connectplugin/protocol/control.cp.h"
#include "connectplugin/protocol/identity.cp.h"

#define PROCEDURE_V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PROCEDURE_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
/* gRPC status codes, as ErrorResponse.error_code carries them. */
#define GRPC_NOT_FOUND 5
#define GRPC_UNIMPLEMENTED 12

typedef struct {
  GPtrArray *services;      /* of char *: full names, sorted */
  GHashTable *files;        /* file name → CpDescriptorFile (owned) */
  GHashTable *symbols;      /* symbol → CpDescriptorFile (borrowed) */
} Index;

static void
index_free (Index *index)
{
  g_ptr_array_unref (index->services);
  g_hash_table_unref (index->symbols);
  g_hash_table_unref (index->files);
  g_free (index);
}

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
index_descriptor_set (Index  *index,
                      GBytes *set)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) files = cp_descriptor_set_read (set, &error);

  if (files == NULL)
    {
      g_warning ("server reflection: a compiled-in descriptor set is unreadable: %s",
                 error->message);
      return;
    }
  for (guint i = 0; i < files->len; i++)
    {
      CpDescriptorFile *file = files->pdata[i];

      if (g_hash_table_contains (index->files, file->name))
        continue;   /* freed with @files */
      files->pdata[i] = NULL;   /* the index owns it now */
      g_hash_table_insert (index->files, file->name, file);
      for (guint j = 0; j < file->symbols->len; j++)
        g_hash_table_insert (index->symbols, file->symbols->pdata[j], file);
    }
}

static void
index_builtin (Index               *index,
               CpServiceDescriptor *descriptor)
{
  GBytes *set = cp_service_descriptor_get_file_descriptor_set (descriptor);

  g_ptr_array_add (index->services, g_strdup (cp_service_descriptor_get_full_name (descriptor)));
  if (set != NULL)
    index_descriptor_set (index, set);
}

static Index *
index_new (CpServer *self)
{
  Index *index = g_new0 (Index, 1);
  /* v1alpha is answered but not listed: the library compiles in v1's
   * descriptors only, and a listed service must be describable (clients
   * listing every method, like buf curl --list-methods, ask for each). */
  static const char * const builtin[] = {
    "grpc.reflection.v1.ServerReflection",
  };

  index->services = g_ptr_array_new_with_free_func (g_free);
  index->files = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) cp_descriptor_file_free);
  index->symbols = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < G_N_ELEMENTS (builtin); i++)
    g_ptr_array_add (index->services, g_strdup (builtin[i]));
  index_descriptor_set (index, cp_service_descriptor_get_file_descriptor_set (
                                 cp_refl_server_reflection_get_descriptor ()));
  /* The services the server itself answers (cp-server.c,
   * add_reserved_paths ()), each listed with its descriptors, so that a
   * client listing every method (buf curl --list-methods) resolves them. */
  index_builtin (index, cp_handshake_service_get_descriptor ());
  if (self->health_enabled)
    index_builtin (index, cp_health_service_get_descriptor ());
  if (self->plugin_control_enabled)
    index_builtin (index, cp_plugin_control_get_descriptor ());
  if (self->identity_enabled)
    index_builtin (index, cp_plugin_identity_get_descriptor ());

  for (guint i = 0; i < self->plugins->len; i++)
    {
      g_autoptr(GPtrArray) descriptors = cp_plugin_get_descriptors (self->plugins->pdata[i]);

      for (guint j = 0; j < descriptors->len; j++)
        {
          CpServiceDescriptor *descriptor = descriptors->pdata[j];
          GBytes *set = cp_service_descriptor_get_file_descriptor_set (descriptor);

          g_ptr_array_add (index->services,
                           g_strdup (cp_service_descriptor_get_full_name (descriptor)));
          if (set != NULL)
            index_descriptor_set (index, set);
        }
    }
  g_ptr_array_sort (index->services, compare_strings);
  return index;
}

static Index *
get_index (CpServer *self)
{
  Index *index = g_object_get_data (G_OBJECT (self), "cp-reflection-index");

  if (index == NULL)
    {
      index = index_new (self);
      g_object_set_data_full (G_OBJECT (self), "cp-reflection-index", index,
                              (GDestroyNotify) index_free);
    }
  return index;
}

/* @file and what it imports, imports first, each once. */
static void
add_with_imports (Index            *index,
                  CpDescriptorFile *file,
                  GHashTable       *added,
                  GPtrArray        *out)
{
  if (!g_hash_table_add (added, file->name))
    return;
  for (guint i = 0; i < file->imports->len; i++)
    {
      CpDescriptorFile *import = g_hash_table_lookup (index->files, file->imports->pdata[i]);

      if (import != NULL)
        add_with_imports (index, import, added, out);
    }
  g_ptr_array_add (out, g_bytes_ref (file->bytes));
}

static void
set_error (CpReflServerReflectionResponse *response,
           int                             code,
           const char                     *message)
{
  g_autoptr(CpReflErrorResponse) error = cp_refl_error_response_new ();

  cp_refl_error_response_set_error_code (error, code);
  cp_refl_error_response_set_error_message (error, message);
  cp_refl_server_reflection_response_set_error_response (response, error);
}

static void
set_file (CpReflServerReflectionResponse *response,
          Index                          *index,
          CpDescriptorFile               *file)
{
  g_autoptr(CpReflFileDescriptorResponse) files = cp_refl_file_descriptor_response_new ();
  g_autoptr(GHashTable) added = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  add_with_imports (index, file, added, out);
  cp_refl_file_descriptor_response_set_file_descriptor_proto (files, out);
  cp_refl_server_reflection_response_set_file_descriptor_response (response, files);
}

static CpReflServerReflectionResponse *
answer (CpServer                      *self,
        CpReflServerReflectionRequest *request)
{
  g_autoptr(CpReflServerReflectionResponse) response = cp_refl_server_reflection_response_new ();
  Index *index = get_index (self);
  CpDescriptorFile *file;
  const char *name;

  cp_refl_server_reflection_response_set_valid_host (response,
                                                     cp_refl_server_reflection_request_get_host (request));
  cp_refl_server_reflection_response_set_original_request (response, request);

  switch (cp_refl_server_reflection_request_get_message_request_case (request))
    {
    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_LIST_SERVICES:
      {
        g_autoptr(CpReflListServiceResponse) list = cp_refl_list_service_response_new ();
        g_autoptr(GPtrArray) services = g_ptr_array_new_with_free_func (g_object_unref);

        for (guint i = 0; i < index->services->len; i++)
          {
            CpReflServiceResponse *service = cp_refl_service_response_new ();

            cp_refl_service_response_set_name (service, index->services->pdata[i]);
            g_ptr_array_add (services, service);
          }
        cp_refl_list_service_response_set_service (list, services);
        cp_refl_server_reflection_response_set_list_services_response (response, list);
      }
      break;

    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_FILE_BY_FILENAME:
      name = cp_refl_server_reflection_request_get_file_by_filename (request);
      if ((file = g_hash_table_lookup (index->files, name)) != NULL)
        set_file (response, index, file);
      else
        set_error (response, GRPC_NOT_FOUND, "file not found");
      break;

    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_FILE_CONTAINING_SYMBOL:
      name = cp_refl_server_reflection_request_get_file_containing_symbol (request);
      if ((file = g_hash_table_lookup (index->symbols, name)) != NULL)
        set_file (response, index, file);
      else
        set_error (response, GRPC_NOT_FOUND, "symbol not found");
      break;

    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_FILE_CONTAINING_EXTENSION:
    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_ALL_EXTENSION_NUMBERS_OF_TYPE:
      /* proto3 services declare no extensions. */
      set_error (response, GRPC_NOT_FOUND, "extensions are not indexed");
      break;

    case CP_REFL_SERVER_REFLECTION_REQUEST_MESSAGE_REQUEST_CASE_NOT_SET:
    default:
      set_error (response, GRPC_UNIMPLEMENTED, "unknown request");
      break;
    }
  return g_steal_pointer (&response);
}

typedef struct {
  CpServer *server;
  CpInvocation *invocation;
} Session;

static void
received (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Session *session = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(CpMessage) request = cp_invocation_receive_finish (session->invocation, result, &error);

  if (request != NULL)
    {
      g_autoptr(CpReflServerReflectionResponse) response =
        answer (session->server, CP_REFL_SERVER_REFLECTION_REQUEST (request));

      if (cp_invocation_send_message (session->invocation, CP_MESSAGE (response), NULL))
        {
          cp_invocation_receive_async (session->invocation, NULL, received, session);
          return;
        }
    }
  else if (error == NULL)
    cp_invocation_return_ok (session->invocation);
  /* Else the call ended already (the client went away, a bad message). */
  g_object_unref (session->invocation);
  g_object_unref (session->server);
  g_free (session);
}

static void
handle_reflection (CpInvocation *invocation,
                   CpMessage    *request,
                   gpointer      user_data)
{
  Session *session = g_new0 (Session, 1);

  session->server = g_object_ref (user_data);
  session->invocation = g_object_ref (invocation);
  cp_invocation_receive_async (invocation, NULL, received, session);
}

void
cp_server_register_reflection (CpServer *server)
{
  cp_server_add_builtin (server, PROCEDURE_V1, CP_METHOD_BIDI_STREAMING,
                         CP_REFL_TYPE_SERVER_REFLECTION_REQUEST,
                         CP_REFL_TYPE_SERVER_REFLECTION_RESPONSE, handle_reflection);
  cp_server_add_builtin (server, PROCEDURE_V1ALPHA, CP_METHOD_BIDI_STREAMING,
                         CP_REFL_TYPE_SERVER_REFLECTION_REQUEST,
                         CP_REFL_TYPE_SERVER_REFLECTION_RESPONSE, handle_reflection);
}
