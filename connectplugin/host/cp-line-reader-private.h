/* cp-line-reader-private.h: reads a stream line by line, each line bounded
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * For the watch streams of etcd and the kube-apiserver (one JSON object a
 * line): what GDataInputStream's read_line does, except that a line longer
 * than the bound fails with `resource_exhausted` instead of growing the
 * buffer for as long as the peer sends bytes without a newline.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The bound of the watch streams: far above what etcd (1.5 MiB values) or
 * the apiserver sends in one event, far below what would hurt a host. */
#define CP_WATCH_MAX_LINE (32 * 1024 * 1024)

#define CP_TYPE_LINE_READER (cp_line_reader_get_type ())
G_DECLARE_FINAL_TYPE (CpLineReader, cp_line_reader, CP, LINE_READER, GObject)

CpLineReader *cp_line_reader_new              (GInputStream         *base,
                                               gsize                 max_line);
/* The next line, without its "\n" (nor a "\r" before it); one read at a
 * time. */
void          cp_line_reader_read_line_async  (CpLineReader         *reader,
                                               GCancellable         *cancellable,
                                               GAsyncReadyCallback   callback,
                                               gpointer              user_data);
/* Returns: (transfer full) (nullable): the line (NUL-terminated, @length
 * bytes), or %NULL at the end of the stream (no error) or on error. */
char         *cp_line_reader_read_line_finish (CpLineReader         *reader,
                                               GAsyncResult         *result,
                                               gsize                *length,
                                               GError              **error);

G_END_DECLS
