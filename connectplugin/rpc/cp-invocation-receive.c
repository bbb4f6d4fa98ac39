/* cp-invocation-receive.c: a CpInvocation's request
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Reads and decodes the request body as the exchange delivers it: a unary
 * POST body (kept as one chunk while it is one, bounded by the receive
 * limit), a GET's message query parameter, or request envelopes (one for
 * server streams, queued for cp_invocation_receive_async() in client and
 * bidi streams, pausing the socket past MAX_QUEUED_REQUESTS). Decoding
 * errors end the call through cp_invocation_engine_fail().
 */
#include "cp-invocation-state-private.h"

#include "cp-base64-private.h"
#include "cp-codec-private.h"
#include "cp-compression.h"
#include "cp-error-private.h"

void
cp_invocation_complete_receive_tasks (CpInvocation *self)
{
  GTask *task;

  while (!g_queue_is_empty (&self->receive_tasks))
    {
      CpMessage *message = g_queue_pop_head (&self->received);

      if (message == NULL && !self->input_done && !self->finished)
        return; /* nothing to give yet */

      task = g_queue_pop_head (&self->receive_tasks);
      cp_invocation_task_detach (task);
      if (message != NULL)
        g_task_return_pointer (task, message, g_object_unref);
      else if (self->finish_error != NULL)
        g_task_return_error (task, g_error_copy (self->finish_error));
      else if (self->finished && !self->input_done)
        g_task_return_new_error (task, CP_ERROR, CP_ERROR_CANCELED, "the call was already answered");
      else
        g_task_return_pointer (task, NULL, NULL);
      g_object_unref (task);
    }

  if (self->body_paused && self->received.length < MAX_QUEUED_REQUESTS && !self->finished)
    {
      self->body_paused = FALSE;
      cp_http_exchange_resume_body (self->exchange);
    }
}

/* Any decoding failure of request bytes is the caller's fault. */
GError *
cp_invocation_as_invalid_argument (GError *error)
{
  if (error->domain != CP_ERROR)
    {
      GError *wrapped = g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT, "%s", error->message);
      g_error_free (error);
      return wrapped;
    }
  return error;
}

GError *
cp_invocation_size_error (guint64 size,
                          gsize   limit)
{
  return g_error_new (CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                      "message size %" G_GUINT64_FORMAT " is larger than configured max %"
                      G_GSIZE_FORMAT, size, limit);
}

/* Decompresses (when @compressed) and checks the size limit. */
static GBytes *
inflate_payload (CpInvocation *self,
                 GBytes       *payload,
                 gboolean      compressed,
                 GError      **error)
{
  g_autoptr(GBytes) data = g_bytes_ref (payload);
  gsize max = self->receive_limit;

  if (g_bytes_get_size (data) > max)
    {
      g_propagate_error (error, cp_invocation_size_error (g_bytes_get_size (data), max));
      return NULL;
    }

  if (compressed && g_bytes_get_size (data) > 0)
    {
      GError *local_error = NULL;
      GBytes *inflated = cp_decompress (self->request_compression, data, max, &local_error);

      if (inflated == NULL)
        {
          /* Bombs are resource_exhausted; any other failure is bad input. */
          if (!g_error_matches (local_error, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED))
            {
              GError *bad = g_error_new (CP_ERROR, CP_ERROR_INVALID_ARGUMENT,
                                         "failed to decompress the message: %s",
                                         local_error->message);
              g_error_free (local_error);
              local_error = bad;
            }
          g_propagate_error (error, local_error);
          return NULL;
        }
      g_bytes_unref (data);
      data = inflated;
      if (g_bytes_get_size (data) > max)
        {
          g_propagate_error (error, cp_invocation_size_error (g_bytes_get_size (data), max));
          return NULL;
        }
    }

  return g_steal_pointer (&data);
}

static CpMessage *
decode_request (CpInvocation *self,
                GBytes       *payload,
                gboolean      compressed,
                GError      **error)
{
  g_autoptr(GBytes) data = NULL;
  GError *local_error = NULL;
  CpMessage *message;

  data = inflate_payload (self, payload, compressed, error);
  if (data == NULL)
    return NULL;

  message = cp_message_new_from_bytes_bounded (cp_method_info_get_input_type (self->info),
                                               self->codec, data,
                                               self->receive_limit * DECODED_SIZE_FACTOR,
                                               &local_error);
  if (message == NULL)
    {
      GError *e = cp_invocation_as_invalid_argument (local_error);

      /* The codec reports every malformed input as invalid_argument, and
       * a message too large once decoded as resource_exhausted. */
      if (e->domain == CP_ERROR && e->code != CP_ERROR_INVALID_ARGUMENT &&
          e->code != CP_ERROR_RESOURCE_EXHAUSTED)
        e->code = CP_ERROR_INVALID_ARGUMENT;
      g_propagate_error (error, e);
    }
  return message;
}

void
cp_invocation_process_unary_payload (CpInvocation *self,
                                     GBytes       *data)
{
  GError *error = NULL;
  g_autoptr(CpMessage) request = NULL;

  request = decode_request (self, data,
                            self->request_compression != CP_COMPRESSION_IDENTITY,
                            &error);
  if (request == NULL)
    {
      cp_invocation_engine_fail (self, error);
      return;
    }
  cp_invocation_dispatch (self, request);
}

void
cp_invocation_process_get (CpInvocation *self)
{
  GBytes *message = g_hash_table_lookup (self->query, "message");
  const char *base64 = cp_invocation_query_lookup (self, "base64");
  g_autoptr(GBytes) data = NULL;

  if (g_strcmp0 (base64, "1") == 0)
    {
      g_autofree char *text = g_strdup (g_bytes_get_data (message, NULL));
      GError *error = NULL;

      /* A raw '+' of the standard alphabet arrives as a space. */
      g_strdelimit (text, " ", '+');
      data = cp_base64_decode_liberal (text, -1, &error);
      if (data == NULL)
        {
          cp_invocation_engine_fail (self, cp_invocation_as_invalid_argument (error));
          return;
        }
    }
  else
    data = g_bytes_ref (message);

  cp_invocation_process_unary_payload (self, data);
}

/* Decodes every complete envelope buffered in the reader. Returns FALSE
 * when the call was ended. */
static gboolean
process_envelopes (CpInvocation *self)
{
  guint8 flags;
  GBytes *payload_raw;
  GError *error = NULL;

  while (self->reader != NULL && !self->input_done &&
         cp_envelope_reader_next (self->reader, &flags, &payload_raw, &error))
    {
      g_autoptr(GBytes) payload = payload_raw;
      CpMessage *message;

      if (flags & CP_ENVELOPE_FLAG_END_STREAM)
        {
          /* Forbidden on requests but tolerated as the last frame (https://connectrpc.com/docs/protocol). */
          self->input_done = TRUE;
          break;
        }

      if ((flags & CP_ENVELOPE_FLAG_COMPRESSED) &&
          self->request_compression == CP_COMPRESSION_IDENTITY)
        {
          cp_invocation_engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_INTERNAL,
                                                        "protocol error: received compressed message "
                                                        "without %s",
                                                        self->protocol == CP_PROTOCOL_CONNECT
                                                        ? "Connect-Content-Encoding" : "grpc-encoding"));
          return FALSE;
        }

      message = decode_request (self, payload, (flags & CP_ENVELOPE_FLAG_COMPRESSED) != 0, &error);
      if (message == NULL)
        {
          cp_invocation_engine_fail (self, error);
          return FALSE;
        }

      self->n_requests++;
      if (self->metrics != NULL)
        cp_metrics_add (self->metrics->messages_received, 1);
      if (!receives_stream (self))
        {
          if (self->n_requests > 1)
            {
              g_object_unref (message);
              cp_invocation_engine_fail (self,
                                         g_error_new (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                                      "protocol error: %s %s received "
                                                      "more than one request message",
                                                      is_stream (self) ? "server streaming" : "unary",
                                                      cp_method_info_get_procedure (self->info)));
              return FALSE;
            }
          self->first_request = message;
        }
      else
        {
          g_queue_push_tail (&self->received, message);
          if (self->received.length >= MAX_QUEUED_REQUESTS && !self->body_paused)
            {
              self->body_paused = TRUE;
              cp_http_exchange_pause_body (self->exchange);
            }
        }
    }

  if (error != NULL)
    {
      cp_invocation_engine_fail (self, error);
      return FALSE;
    }

  if (receives_stream (self))
    cp_invocation_complete_receive_tasks (self);
  return TRUE;
}

void
cp_invocation_stream_input_end (CpInvocation *self)
{
  GError *error = NULL;

  if (self->text_decoder != NULL && !self->input_done && self->reader != NULL)
    {
      g_autoptr(GBytes) tail = NULL;

      if (!cp_grpc_text_decoder_finish (self->text_decoder, &tail, &error))
        {
          cp_invocation_engine_fail (self, error);
          return;
        }
      if (tail != NULL)
        {
          cp_envelope_reader_push (self->reader, tail);
          if (!process_envelopes (self))
            return;
        }
    }
  if (!self->input_done && self->reader != NULL &&
      !cp_envelope_reader_finish (self->reader, &error))
    {
      cp_invocation_engine_fail (self, error);
      return;
    }
  self->input_done = TRUE;

  if (!receives_stream (self))
    {
      g_autoptr(CpMessage) request = g_steal_pointer (&self->first_request);

      if (request == NULL)
        {
          cp_invocation_engine_fail (self, g_error_new (CP_ERROR, CP_ERROR_UNIMPLEMENTED,
                                                        "protocol error: %s %s received "
                                                        "no request message",
                                                        is_stream (self) ? "server streaming" : "unary",
                                                        cp_method_info_get_procedure (self->info)));
          return;
        }
      cp_invocation_dispatch (self, request);
    }
  else
    cp_invocation_complete_receive_tasks (self);
}

/* ------------------------------------------------------------------ */
/* Exchange callbacks                                                   */

void
cp_invocation_on_body_chunk (CpHttpExchange *exchange,
                             GBytes         *chunk,
                             gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;

  if (self == NULL || self->finished)
    return;

  self->received_bytes += g_bytes_get_size (chunk);
  if (self->metrics != NULL)
    cp_metrics_add (self->metrics->request_bytes, g_bytes_get_size (chunk));
  if (!enveloped (self))
    {
      if (!self->reading_body)
        return;
      /* Checked before adding: body_size stays <= receive_limit. */
      if (g_bytes_get_size (chunk) > self->receive_limit - self->body_size)
        {
          self->close_on_answer = TRUE;
          cp_invocation_engine_fail (self,
                                     cp_invocation_size_error ((guint64) self->body_size +
                                                               g_bytes_get_size (chunk),
                                                               self->receive_limit));
          return;
        }
      self->body_size += g_bytes_get_size (chunk);
      /* Zero copy while the body is a single chunk. */
      if (self->body == NULL && self->body_first == NULL)
        self->body_first = g_bytes_ref (chunk);
      else
        {
          if (self->body == NULL)
            {
              g_autoptr(GBytes) first = g_steal_pointer (&self->body_first);
              self->body = g_byte_array_sized_new (self->body_size);
              g_byte_array_append (self->body, g_bytes_get_data (first, NULL),
                                   g_bytes_get_size (first));
            }
          g_byte_array_append (self->body, g_bytes_get_data (chunk, NULL),
                               g_bytes_get_size (chunk));
        }
      return;
    }

  if (self->reader == NULL || self->input_done)
    return;
  /* Any error in there is about framing, size or encoding of the stream. */
  self->close_on_answer = TRUE;
  if (G_UNLIKELY (self->text_decoder != NULL))
    {
      GError *error = NULL;
      g_autoptr(GBytes) decoded = cp_grpc_text_decoder_push (self->text_decoder,
                                                             g_bytes_get_data (chunk, NULL),
                                                             g_bytes_get_size (chunk), &error);

      if (error != NULL)
        {
          cp_invocation_engine_fail (self, error);
          return;
        }
      if (decoded != NULL)
        cp_envelope_reader_push (self->reader, decoded);
    }
  else
    cp_envelope_reader_push (self->reader, chunk);
  process_envelopes (self);
  self->close_on_answer = FALSE;
}

void
cp_invocation_on_body_end (CpHttpExchange *exchange,
                           gpointer        user_data)
{
  InvocationLink *link = user_data;
  g_autoptr(CpInvocation) self = link->invocation ? g_object_ref (link->invocation) : NULL;

  if (self == NULL || self->body_done)
    return;
  self->body_done = TRUE;
  if (self->finished)
    return;

  if (!enveloped (self))
    {
      g_autoptr(GBytes) data = NULL;

      if (!self->reading_body)
        return; /* GET, or an empty body already processed */
      self->reading_body = FALSE;
      if (self->body != NULL)
        data = g_byte_array_free_to_bytes (g_steal_pointer (&self->body));
      else if (self->body_first != NULL)
        data = g_steal_pointer (&self->body_first);
      else
        data = g_bytes_new (NULL, 0);
      cp_invocation_process_unary_payload (self, data);
      return;
    }

  cp_invocation_stream_input_end (self);
}

/**
 * cp_invocation_receive_async:
 * @invocation: a [class@ConnectPlugin.Invocation] of a client-streaming or bidi method
 * @cancellable: (nullable): a [class@Gio.Cancellable]
 * @callback: (scope async): called with the next request
 * @user_data: (closure): data for @callback
 *
 * Receives the next request message of the stream, in order. At the end of
 * the stream [method@ConnectPlugin.Invocation.receive_finish] returns %NULL without error.
 */
void
cp_invocation_receive_async (CpInvocation        *invocation,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CP_IS_INVOCATION (invocation));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));
  g_return_if_fail (receives_stream (invocation));

  task = g_task_new (invocation, cancellable, callback, user_data);
  g_task_set_source_tag (task, cp_invocation_receive_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  cp_invocation_watch_cancellable (task);
  g_queue_push_tail (&invocation->receive_tasks, g_steal_pointer (&task));
  cp_invocation_complete_receive_tasks (invocation);
}

/**
 * cp_invocation_receive_finish:
 * @invocation: a [class@ConnectPlugin.Invocation]
 * @result: the [iface@Gio.AsyncResult]
 * @error: return location for a [struct@GLib.Error]
 *
 * Finishes [method@ConnectPlugin.Invocation.receive_async].
 *
 * Returns: (transfer full) (nullable): the next request, or %NULL at the end
 *   of the stream (@error unset) or on error (the call ended or
 *   @cancellable was cancelled)
 */
CpMessage *
cp_invocation_receive_finish (CpInvocation  *invocation,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (CP_IS_INVOCATION (invocation), NULL);
  g_return_val_if_fail (g_task_is_valid (result, invocation), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == cp_invocation_receive_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
