/* test-reflection.c: CpServer:reflection-enabled, gRPC server reflection over Connect
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The echo server of host-test-util (hosttest.v1.EchoService and
 * OtherService, generated from hosttest.proto with its descriptors compiled
 * in), asked through a bidirectional stream of our own client with the
 * library's reflection messages.
 */
#include <string.h>

#include "host-test-util.h"
#include "cp-descriptor-set-private.h"
#include "reflection.cp.h"

#define V1 "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

typedef struct {
  GPtrArray *responses;
  GError *error;
  gboolean closed;
} Run;

static void
on_message (CpResponseStream *stream,
            CpMessage        *message,
            Run              *run)
{
  g_ptr_array_add (run->responses, g_object_ref (message));
}

static void
on_closed (CpResponseStream *stream,
           const GError     *error,
           Run              *run)
{
  run->error = error ? g_error_copy (error) : NULL;
  run->closed = TRUE;
}

/* Sends @requests on one stream of @procedure; the responses, or NULL and
 * *error. */
static GPtrArray *
ask (const char  *url,
     const char  *procedure,
     GPtrArray   *requests,
     GError     **error)
{
  g_autoptr(CpChannel) channel = cp_channel_new (url, NULL);
  g_autoptr(CpRequestStream) stream = NULL;
  g_autoptr(CpResponseStream) responses = NULL;
  Run run = { g_ptr_array_new_with_free_func (g_object_unref), NULL, FALSE };

  stream = cp_channel_call_bidi_stream (channel, procedure,
                                        CP_REFL_TYPE_SERVER_REFLECTION_RESPONSE, NULL);
  for (guint i = 0; i < requests->len; i++)
    g_assert_true (cp_request_stream_send (stream, requests->pdata[i], NULL));
  responses = cp_request_stream_close_and_receive (stream);
  g_signal_connect (responses, "message", G_CALLBACK (on_message), &run);
  g_signal_connect (responses, "closed", G_CALLBACK (on_closed), &run);
  cp_response_stream_start (responses);
  host_test_wait_flag (&run.closed);
  if (run.error != NULL)
    {
      g_propagate_error (error, run.error);
      g_ptr_array_unref (run.responses);
      return NULL;
    }
  return run.responses;
}

static CpMessage *
request_new (void (*set) (CpReflServerReflectionRequest *, const char *),
             const char *value)
{
  CpReflServerReflectionRequest *request = cp_refl_server_reflection_request_new ();

  cp_refl_server_reflection_request_set_host (request, "localhost");
  set (request, value);
  return CP_MESSAGE (request);
}

/* The files of a FileDescriptorResponse, read as a FileDescriptorSet. */
static GPtrArray *
files_of (CpReflServerReflectionResponse *response)
{
  g_autoptr(CpReflFileDescriptorResponse) files =
    cp_refl_server_reflection_response_get_file_descriptor_response (response);
  g_autoptr(GPtrArray) protos = NULL;
  g_autoptr(GByteArray) set = g_byte_array_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *read;

  g_assert_cmpint (cp_refl_server_reflection_response_get_message_response_case (response), ==,
                   CP_REFL_SERVER_REFLECTION_RESPONSE_MESSAGE_RESPONSE_CASE_FILE_DESCRIPTOR_RESPONSE);
  protos = cp_refl_file_descriptor_response_get_file_descriptor_proto (files);
  for (guint i = 0; i < protos->len; i++)
    {
      gsize len = g_bytes_get_size (protos->pdata[i]);
      guint8 head[6] = { 0x0a };
      guint n = 1;

      do
        {
          head[n++] = (guint8) ((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
          len >>= 7;
        }
      while (len > 0);
      g_byte_array_append (set, head, n);
      g_byte_array_append (set, g_bytes_get_data (protos->pdata[i], NULL),
                           (guint) g_bytes_get_size (protos->pdata[i]));
    }
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&set));
  read = cp_descriptor_set_read (bytes, &error);
  g_assert_no_error (error);
  return read;
}

static gboolean
has_string (GPtrArray  *strings,
            const char *s)
{
  for (guint i = 0; i < strings->len; i++)
    if (g_str_equal (strings->pdata[i], s))
      return TRUE;
  return FALSE;
}

static void
assert_error (CpReflServerReflectionResponse *response,
              int                             code)
{
  g_autoptr(CpReflErrorResponse) error = NULL;

  g_assert_cmpint (cp_refl_server_reflection_response_get_message_response_case (response), ==,
                   CP_REFL_SERVER_REFLECTION_RESPONSE_MESSAGE_RESPONSE_CASE_ERROR_RESPONSE);
  error = cp_refl_server_reflection_response_get_error_response (response);
  g_assert_cmpint (cp_refl_error_response_get_error_code (error), ==, code);
}

static void
check_answers (const char *url,
               const char *procedure)
{
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) responses = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_list_services, "*"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "hosttest.v1.EchoService"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "hosttest.v1.EchoService.Say"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "hosttest.v1.CountResponse"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_by_filename,
                                          "hosttest.proto"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "hosttest.v1.Nothing"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_by_filename,
                                          "nothing.proto"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_all_extension_numbers_of_type,
                                          "hosttest.v1.SayRequest"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "grpc.reflection.v1.ServerReflection"));
  /* The server's own services are described too, not only listed. */
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "connectplugin.health.v1.HealthService"));
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_file_containing_symbol,
                                          "connectplugin.v1.HandshakeService.Handshake"));

  responses = ask (url, procedure, requests, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (responses->len, ==, requests->len);

  /* Each answer names its request, in order. */
  for (guint i = 0; i < responses->len; i++)
    {
      g_autoptr(CpReflServerReflectionRequest) original =
        cp_refl_server_reflection_response_get_original_request (responses->pdata[i]);

      g_assert_true (cp_message_equal (CP_MESSAGE (original), requests->pdata[i]));
      g_assert_cmpstr (cp_refl_server_reflection_response_get_valid_host (responses->pdata[i]), ==,
                       "localhost");
    }

  /* list_services: the plugins' services and the server's own. */
  {
    g_autoptr(CpReflListServiceResponse) list =
      cp_refl_server_reflection_response_get_list_services_response (responses->pdata[0]);
    g_autoptr(GPtrArray) services = cp_refl_list_service_response_get_service (list);
    g_autoptr(GPtrArray) names = g_ptr_array_new ();

    for (guint i = 0; i < services->len; i++)
      g_ptr_array_add (names, (gpointer) cp_refl_service_response_get_name (services->pdata[i]));
    g_assert_true (has_string (names, "hosttest.v1.EchoService"));
    g_assert_true (has_string (names, "hosttest.v1.OtherService"));
    g_assert_true (has_string (names, "grpc.reflection.v1.ServerReflection"));
    /* answered (check_answers runs on it too) but not listed: it could not be described */
    g_assert_false (has_string (names, "grpc.reflection.v1alpha.ServerReflection"));
    g_assert_true (has_string (names, "connectplugin.health.v1.HealthService"));
    g_assert_true (has_string (names, "connectplugin.v1.HandshakeService"));
  }

  /* A service, a method, a message, a file name: hosttest.proto, which
   * declares them all. */
  for (guint i = 1; i <= 4; i++)
    {
      g_autoptr(GPtrArray) files = files_of (responses->pdata[i]);
      CpDescriptorFile *file = files->pdata[files->len - 1];

      g_assert_cmpuint (files->len, ==, 1);
      g_assert_cmpstr (file->name, ==, "hosttest.proto");
      g_assert_true (has_string (file->symbols, "hosttest.v1.EchoService"));
      g_assert_true (has_string (file->symbols, "hosttest.v1.EchoService.Count"));
      g_assert_true (has_string (file->symbols, "hosttest.v1.SayRequest"));
      g_assert_true (has_string (file->symbols, "hosttest.v1.OtherService.Ping"));
    }

  assert_error (responses->pdata[5], 5);
  assert_error (responses->pdata[6], 5);
  assert_error (responses->pdata[7], 5);

  /* The reflection service describes itself. */
  {
    g_autoptr(GPtrArray) files = files_of (responses->pdata[8]);

    g_assert_cmpstr (((CpDescriptorFile *) files->pdata[0])->name, ==, "reflection.proto");
  }
  {
    g_autoptr(GPtrArray) health = files_of (responses->pdata[9]);
    g_autoptr(GPtrArray) handshake = files_of (responses->pdata[10]);

    g_assert_true (has_string (((CpDescriptorFile *) health->pdata[health->len - 1])->symbols,
                               "connectplugin.health.v1.HealthService.Check"));
    g_assert_true (has_string (((CpDescriptorFile *) handshake->pdata[handshake->len - 1])->symbols,
                               "connectplugin.v1.HandshakeService"));
  }
}

static void
test_reflection (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  g_object_set (server, "reflection-enabled", TRUE, NULL);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);

  check_answers (url, V1);
  check_answers (url, V1ALPHA);
  cp_server_close (server);
}

static void
test_reflection_off (void)
{
  g_autoptr(CpServer) server = host_test_echo_server_new ();
  g_autoptr(GPtrArray) requests = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) responses = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  gboolean enabled = TRUE;

  g_object_get (server, "reflection-enabled", &enabled, NULL);
  g_assert_false (enabled);
  url = cp_server_listen (server, "127.0.0.1:0", &error);
  g_assert_no_error (error);
  g_ptr_array_add (requests, request_new (cp_refl_server_reflection_request_set_list_services, ""));
  responses = ask (url, V1, requests, &error);
  g_assert_null (responses);
  g_assert_error (error, CP_ERROR, CP_ERROR_UNIMPLEMENTED);
  cp_server_close (server);
}

/* What the generated code compiles in: the file and its imports, imports
 * first (services.proto of the codegen tests imports nothing; the
 * library's own protocol files import each other). */
static void
test_descriptor_sets (void)
{
  CpServiceDescriptor *descriptor = cp_capability_broker_get_descriptor ();
  GBytes *set = cp_service_descriptor_get_file_descriptor_set (descriptor);
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GError) error = NULL;
  CpDescriptorFile *last;

  g_assert_nonnull (set);
  files = cp_descriptor_set_read (set, &error);
  g_assert_no_error (error);
  last = files->pdata[files->len - 1];
  g_assert_cmpstr (last->name, ==, "broker.proto");
  g_assert_true (has_string (last->symbols, "connectplugin.v1.CapabilityBroker.RequestCapability"));
  for (guint i = 0; i < last->imports->len; i++)
    {
      gboolean found = FALSE;

      for (guint j = 0; j + 1 < files->len; j++)
        found |= g_str_equal (((CpDescriptorFile *) files->pdata[j])->name, last->imports->pdata[i]);
      g_assert_true (found);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/host/reflection/answers", test_reflection);
  g_test_add_func ("/host/reflection/off", test_reflection_off);
  g_test_add_func ("/host/reflection/descriptor-sets", test_descriptor_sets);

  return g_test_run ();
}
