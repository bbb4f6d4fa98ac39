/* cp-line-reader.c: reads a stream line by line, each line bounded
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "cp-line-reader-private.h"
#include "cp-error.h"

#include <string.h>

#define READ_SIZE (16 * 1024)

struct _CpLineReader
{
  GObject parent_instance;

  GInputStream *base;
  gsize max_line;
  GByteArray *buffer;    /* bytes read, not yet returned */
  gsize scanned;         /* of buffer, known to hold no "\n" */
  gboolean eof;
};

G_DEFINE_FINAL_TYPE (CpLineReader, cp_line_reader, G_TYPE_OBJECT)

static void
cp_line_reader_finalize (GObject *object)
{
  CpLineReader *self = CP_LINE_READER (object);

  g_clear_object (&self->base);
  g_byte_array_unref (self->buffer);
  G_OBJECT_CLASS (cp_line_reader_parent_class)->finalize (object);
}

static void
cp_line_reader_class_init (CpLineReaderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = cp_line_reader_finalize;
}

static void
cp_line_reader_init (CpLineReader *self)
{
  self->buffer = g_byte_array_new ();
}

CpLineReader *
cp_line_reader_new (GInputStream *base,
                    gsize         max_line)
{
  CpLineReader *self = g_object_new (CP_TYPE_LINE_READER, NULL);

  self->base = g_object_ref (base);
  self->max_line = max_line;
  return self;
}

typedef struct {
  char *line;
  gsize length;
} Line;

static void
line_free (Line *line)
{
  g_free (line->line);
  g_free (line);
}

/* Completes @task with the next line of the buffer, if there is one, or
 * with the end or the overflow; FALSE when more bytes are needed. */
static gboolean
take_line (CpLineReader *self,
           GTask        *task)
{
  guint8 *nl = memchr (self->buffer->data + self->scanned, '\n',
                       self->buffer->len - self->scanned);
  Line *line;
  gsize len;

  if (nl == NULL)
    {
      self->scanned = self->buffer->len;
      if (self->buffer->len > self->max_line)
        {
          g_task_return_new_error (task, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                                   "a line of the stream is longer than %" G_GSIZE_FORMAT " bytes",
                                   self->max_line);
          return TRUE;
        }
      if (!self->eof)
        return FALSE;
      if (self->buffer->len == 0)
        {
          g_task_return_pointer (task, NULL, NULL);   /* the end */
          return TRUE;
        }
      nl = self->buffer->data + self->buffer->len;   /* a last line without "\n" */
    }
  len = nl - self->buffer->data;
  if (len > self->max_line)
    {
      g_task_return_new_error (task, CP_ERROR, CP_ERROR_RESOURCE_EXHAUSTED,
                               "a line of the stream is longer than %" G_GSIZE_FORMAT " bytes",
                               self->max_line);
      return TRUE;
    }
  line = g_new0 (Line, 1);
  line->length = len > 0 && self->buffer->data[len - 1] == '\r' ? len - 1 : len;
  line->line = g_malloc (line->length + 1);
  memcpy (line->line, self->buffer->data, line->length);
  line->line[line->length] = '\0';
  g_byte_array_remove_range (self->buffer, 0, MIN (len + 1, self->buffer->len));
  self->scanned = 0;
  g_task_return_pointer (task, line, (GDestroyNotify) line_free);
  return TRUE;
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CpLineReader *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  if (bytes == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    self->eof = TRUE;
  else
    g_byte_array_append (self->buffer, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  if (take_line (self, task))
    return;
  g_input_stream_read_bytes_async (self->base, READ_SIZE, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), read_cb, g_object_ref (task));
}

void
cp_line_reader_read_line_async (CpLineReader        *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, cp_line_reader_read_line_async);
  if (take_line (self, task))
    return;
  g_input_stream_read_bytes_async (self->base, READ_SIZE, G_PRIORITY_DEFAULT, cancellable,
                                   read_cb, g_steal_pointer (&task));
}

char *
cp_line_reader_read_line_finish (CpLineReader  *self,
                                 GAsyncResult  *result,
                                 gsize         *length,
                                 GError       **error)
{
  Line *line;
  char *text;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  *length = 0;
  line = g_task_propagate_pointer (G_TASK (result), error);
  if (line == NULL)
    return NULL;
  text = g_steal_pointer (&line->line);
  *length = line->length;
  line_free (line);
  return text;
}
