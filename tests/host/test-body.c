/* test-body.c: an in-memory request body a test pushes into
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GInputStream that returns what the test pushed, read asynchronously
 * by libsoup as a request body: the caller side of the router tests.
 */
#include "test-body.h"

#include <string.h>

#define HIGH_WATER (64 * 1024)
#define LOW_WATER (16 * 1024)

struct _TestBody
{
  GInputStream parent_instance;

  GQueue chunks;              /* GBytes* */
  gsize offset;               /* consumed bytes of the head chunk */
  gsize queued;
  gboolean ended;
  GError *error;
  gboolean paused;

  GTask *pending;             /* a read waiting for data */
  void *pending_buffer;
  gsize pending_count;
  GCancellable *pending_cancellable;
  gulong cancel_id;

  void (*drained) (gpointer user_data);
  gpointer user_data;
};

G_DEFINE_FINAL_TYPE (TestBody, test_body, G_TYPE_INPUT_STREAM)

static gssize
take (TestBody *self,
      void         *buffer,
      gsize         count)
{
  gsize done = 0;

  while (done < count && !g_queue_is_empty (&self->chunks))
    {
      GBytes *head = g_queue_peek_head (&self->chunks);
      gsize len;
      const guint8 *data = g_bytes_get_data (head, &len);
      gsize n = MIN (count - done, len - self->offset);

      memcpy ((guint8 *) buffer + done, data + self->offset, n);
      done += n;
      self->offset += n;
      self->queued -= n;
      if (self->offset == len)
        {
          g_bytes_unref (g_queue_pop_head (&self->chunks));
          self->offset = 0;
        }
    }
  if (self->paused && self->queued < LOW_WATER)
    {
      self->paused = FALSE;
      if (self->drained != NULL)
        self->drained (self->user_data);
    }
  return done;
}

static void
complete_pending (TestBody *self)
{
  g_autoptr(GTask) task = NULL;

  if (self->pending == NULL)
    return;
  if (g_queue_is_empty (&self->chunks) && !self->ended && self->error == NULL &&
      !g_cancellable_is_cancelled (self->pending_cancellable))
    return;

  task = g_steal_pointer (&self->pending);
  if (self->cancel_id != 0)
    g_cancellable_disconnect (self->pending_cancellable, self->cancel_id);
  self->cancel_id = 0;
  g_clear_object (&self->pending_cancellable);

  if (!g_queue_is_empty (&self->chunks))
    g_task_return_int (task, take (self, self->pending_buffer, self->pending_count));
  else if (self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else if (self->ended)
    g_task_return_int (task, 0);
  else
    g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
}

static gboolean
complete_pending_idle (gpointer user_data)
{
  complete_pending (user_data);
  return G_SOURCE_REMOVE;
}

static void
on_cancelled (GCancellable *cancellable,
              TestBody *self)
{
  /* May run in another thread or inside g_cancellable_cancel(): finish
   * from the stream's context. */
  g_main_context_invoke_full (g_task_get_context (self->pending), G_PRIORITY_DEFAULT,
                              complete_pending_idle, g_object_ref (self), g_object_unref);
}

static void
test_body_read_async (GInputStream        *stream,
                           void                *buffer,
                           gsize                count,
                           int                  io_priority,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  TestBody *self = TEST_BODY (stream);
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, test_body_read_async);
  if (!g_queue_is_empty (&self->chunks))
    g_task_return_int (task, take (self, buffer, count));
  else if (self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else if (self->ended)
    g_task_return_int (task, 0);
  else if (g_task_return_error_if_cancelled (task))
    ;
  else
    {
      self->pending = g_steal_pointer (&task);
      self->pending_buffer = buffer;
      self->pending_count = count;
      if (cancellable != NULL)
        {
          self->pending_cancellable = g_object_ref (cancellable);
          self->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled),
                                                   self, NULL);
        }
    }
}

static gssize
test_body_read_finish (GInputStream  *stream,
                            GAsyncResult  *result,
                            GError       **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

static gssize
test_body_read (GInputStream  *stream,
                     void          *buffer,
                     gsize          count,
                     GCancellable  *cancellable,
                     GError       **error)
{
  TestBody *self = TEST_BODY (stream);

  /* Only what is already here: the router never reads synchronously. */
  if (!g_queue_is_empty (&self->chunks))
    return take (self, buffer, count);
  if (self->error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->error));
      return -1;
    }
  if (self->ended)
    return 0;
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                       "the routed request body is not available synchronously");
  return -1;
}

static void
test_body_close_async (GInputStream        *stream,
                            int                  io_priority,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_return_boolean (task, TRUE);
}

static gboolean
test_body_close_finish (GInputStream  *stream,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
test_body_close (GInputStream  *stream,
                      GCancellable  *cancellable,
                      GError       **error)
{
  return TRUE;
}

static void
test_body_dispose (GObject *object)
{
  TestBody *self = TEST_BODY (object);

  if (self->pending != NULL && self->error == NULL)
    self->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CLOSED, "routed call gone");
  complete_pending (self);
  G_OBJECT_CLASS (test_body_parent_class)->dispose (object);
}

static void
test_body_finalize (GObject *object)
{
  TestBody *self = TEST_BODY (object);

  g_queue_clear_full (&self->chunks, (GDestroyNotify) g_bytes_unref);
  g_clear_error (&self->error);
  G_OBJECT_CLASS (test_body_parent_class)->finalize (object);
}

static void
test_body_class_init (TestBodyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->dispose = test_body_dispose;
  object_class->finalize = test_body_finalize;
  stream_class->read_fn = test_body_read;
  stream_class->read_async = test_body_read_async;
  stream_class->read_finish = test_body_read_finish;
  stream_class->close_fn = test_body_close;
  stream_class->close_async = test_body_close_async;
  stream_class->close_finish = test_body_close_finish;
}

static void
test_body_init (TestBody *self)
{
  g_queue_init (&self->chunks);
}

TestBody *
test_body_new (GCallback drained,
                    gpointer  user_data)
{
  TestBody *self = g_object_new (TEST_TYPE_BODY, NULL);

  self->drained = (void (*) (gpointer)) drained;
  self->user_data = user_data;
  return self;
}

gboolean
test_body_push (TestBody *self,
                     GBytes       *chunk)
{
  if (self->ended || self->error != NULL || g_bytes_get_size (chunk) == 0)
    return FALSE;
  g_queue_push_tail (&self->chunks, g_bytes_ref (chunk));
  self->queued += g_bytes_get_size (chunk);
  complete_pending (self);
  if (self->queued > HIGH_WATER)
    self->paused = TRUE;
  return self->paused;
}

void
test_body_end (TestBody *self)
{
  self->ended = TRUE;
  complete_pending (self);
}

void
test_body_fail (TestBody *self,
                     const GError *error)
{
  if (self->error == NULL && !self->ended)
    self->error = g_error_copy (error);
  complete_pending (self);
}

void
test_body_detach (TestBody *self)
{
  self->drained = NULL;
  self->user_data = NULL;
}
