/* cp-rpc-relay.c: home routes, relayed from a worker to the server's own context
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * With worker threads, "home" routes (cp_rpc_server_add_home_method(),
 * plain paths but /metrics, prefix handlers) belong to code that expects
 * the server's own context: CpServer's built-in services, its probes, the
 * host's router. A request for one that arrives on a worker is relayed:
 * the worker passes the request head and body to the server's context,
 * which serves it as an in-process (local) exchange, and the response comes
 * back the same way and is written on the worker's connection. Each side
 * only touches its own exchange; the two talk through mailboxes (a queue
 * under a lock, drained by an idle source in the receiving context). The
 * response of a unary call usually crosses in one batch and is written
 * with Content-Length; streams are forwarded as they come. Request bytes
 * relayed but not yet taken are not bounded beyond max-receive-size per
 * message: home routes are the control plane, not the data plane.
 */
#include "cp-rpc-server-private.h"

#include <string.h>

typedef enum {
  RELAY_DISPATCH,    /* to home: start the local exchange */
  RELAY_HEAD,        /* to the worker: status and headers */
  RELAY_CHUNK,       /* either way: a piece of body */
  RELAY_END,         /* either way: the body ended (to the worker: trailers, nullable) */
  RELAY_CANCEL,      /* to home: the client went away */
} RelayOpKind;

typedef struct {
  RelayOpKind kind;
  guint status;
  SoupMessageHeaders *headers;
  GBytes *chunk;
} RelayOp;

typedef struct _Relay Relay;

typedef struct {
  Relay *relay;
  GMainContext *context;
  GMutex lock;
  GQueue ops;                    /* RelayOp* */
  gboolean scheduled;
  void (*apply) (Relay *relay, GQueue *ops);
} RelayMailbox;

struct _Relay
{
  CpRpcServer *server;
  /* The worker's side, in its context. */
  CpHttpExchange *exchange;
  gboolean begun;
  /* The home side, in the server's context. */
  CpHttpExchange *local;
  GQueue pending;                /* RelayOp* of the response, not yet posted */
  gboolean flush_scheduled;
  /* The request, copied on the worker. */
  char *method;
  char *path_and_query;
  SoupMessageHeaders *headers;
  GSocketAddress *remote_address;
  GTlsCertificate *peer_certificate;

  RelayMailbox to_home;
  RelayMailbox to_worker;
};

static RelayOp *
relay_op_new (RelayOpKind kind)
{
  RelayOp *op = g_new0 (RelayOp, 1);

  op->kind = kind;
  return op;
}

static void
relay_op_free (gpointer data)
{
  RelayOp *op = data;

  g_clear_pointer (&op->headers, soup_message_headers_unref);
  g_clear_pointer (&op->chunk, g_bytes_unref);
  g_free (op);
}

static SoupMessageHeaders *
copy_headers (SoupMessageHeaders *headers,
              SoupMessageHeadersType type)
{
  SoupMessageHeaders *copy = soup_message_headers_new (type);
  SoupMessageHeadersIter iter;
  const char *name, *value;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    soup_message_headers_append (copy, name, value);
  return copy;
}

static void
relay_clear (gpointer data)
{
  Relay *relay = data;

  /* Both exchanges were let go in their own contexts. */
  g_assert (relay->exchange == NULL && relay->local == NULL);
  g_queue_clear_full (&relay->pending, relay_op_free);
  g_queue_clear_full (&relay->to_home.ops, relay_op_free);
  g_queue_clear_full (&relay->to_worker.ops, relay_op_free);
  g_mutex_clear (&relay->to_home.lock);
  g_mutex_clear (&relay->to_worker.lock);
  g_main_context_unref (relay->to_home.context);
  g_main_context_unref (relay->to_worker.context);
  g_free (relay->method);
  g_free (relay->path_and_query);
  soup_message_headers_unref (relay->headers);
  g_clear_object (&relay->remote_address);
  g_clear_object (&relay->peer_certificate);
  g_object_unref (relay->server);
}

static void
relay_unref (gpointer data)
{
  g_atomic_rc_box_release_full (data, relay_clear);
}

static gboolean
relay_mailbox_cb (gpointer data)
{
  RelayMailbox *box = data;
  GQueue ops;

  g_mutex_lock (&box->lock);
  ops = box->ops;
  g_queue_init (&box->ops);
  box->scheduled = FALSE;
  g_mutex_unlock (&box->lock);
  box->apply (box->relay, &ops);
  g_queue_clear_full (&ops, relay_op_free);
  return G_SOURCE_REMOVE;
}

static void
relay_mailbox_source_done (gpointer data)
{
  relay_unref (((RelayMailbox *) data)->relay);
}

/* Posts the ops of @ops (emptied) to @box; from any thread. */
static void
relay_post (RelayMailbox *box,
            GQueue       *ops)
{
  gboolean schedule;
  RelayOp *op;

  g_mutex_lock (&box->lock);
  while ((op = g_queue_pop_head (ops)) != NULL)
    g_queue_push_tail (&box->ops, op);
  schedule = !box->scheduled;
  box->scheduled = TRUE;
  g_mutex_unlock (&box->lock);
  if (schedule)
    {
      g_autoptr(GSource) source = g_idle_source_new ();

      g_atomic_rc_box_acquire (box->relay);
      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, relay_mailbox_cb, box, relay_mailbox_source_done);
      g_source_set_static_name (source, "[connectplugin] relay");
      g_source_attach (source, box->context);
    }
}

static void
relay_post_one (RelayMailbox *box,
                RelayOp      *op)
{
  GQueue ops = G_QUEUE_INIT;

  g_queue_push_tail (&ops, op);
  relay_post (box, &ops);
}

/* ---- home: the local exchange ---- */

static gboolean
relay_flush_cb (gpointer data)
{
  Relay *relay = data;

  relay->flush_scheduled = FALSE;
  relay_post (&relay->to_worker, &relay->pending);
  return G_SOURCE_REMOVE;
}

/* Response ops are posted from the main loop, so that a whole unary
 * answer (which ends in the same call that began it) crosses in one batch. */
static void
relay_schedule_flush (Relay *relay)
{
  g_autoptr(GSource) source = NULL;

  if (relay->flush_scheduled)
    return;
  relay->flush_scheduled = TRUE;
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, relay_flush_cb, g_atomic_rc_box_acquire (relay), relay_unref);
  g_source_set_static_name (source, "[connectplugin] relay flush");
  g_source_attach (source, relay->to_home.context);
}

static void
relay_response_head (CpHttpExchange     *local,
                     guint               status,
                     SoupMessageHeaders *headers,
                     gpointer            user_data)
{
  Relay *relay = user_data;
  RelayOp *op = relay_op_new (RELAY_HEAD);

  op->status = status;
  op->headers = copy_headers (headers, SOUP_MESSAGE_HEADERS_RESPONSE);
  g_queue_push_tail (&relay->pending, op);
  relay_schedule_flush (relay);
}

static void
relay_response_chunk (CpHttpExchange *local,
                      GBytes         *chunk,
                      gpointer        user_data)
{
  Relay *relay = user_data;
  RelayOp *op = relay_op_new (RELAY_CHUNK);

  op->chunk = g_bytes_ref (chunk);
  g_queue_push_tail (&relay->pending, op);
  relay_schedule_flush (relay);
}

static void
relay_response_end (CpHttpExchange *local,
                    gpointer        user_data)
{
  Relay *relay = user_data;
  RelayOp *op = relay_op_new (RELAY_END);
  SoupMessageHeaders *trailers = cp_http_exchange_local_get_response_trailers (local);

  if (trailers != NULL)
    op->headers = copy_headers (trailers, SOUP_MESSAGE_HEADERS_RESPONSE);
  g_queue_push_tail (&relay->pending, op);
  relay_post (&relay->to_worker, &relay->pending);
}

static const CpHttpLocalCallbacks relay_local_callbacks = {
  relay_response_head, relay_response_chunk, relay_response_end,
};

/* The local transport let go of the relay: drop the local exchange (in
 * its context, where it belongs). */
static void
relay_local_released (gpointer data)
{
  Relay *relay = data;

  g_clear_pointer (&relay->local, cp_http_exchange_unref);
  relay_unref (relay);
}

static void
relay_apply_home (Relay  *relay,
                  GQueue *ops)
{
  for (GList *l = ops->head; l != NULL; l = l->next)
    {
      RelayOp *op = l->data;

      switch (op->kind)
        {
        case RELAY_DISPATCH:
          {
            CpHttpExchange *local =
              cp_http_exchange_new_local (relay->method, relay->path_and_query,
                                          relay->headers, &relay_local_callbacks,
                                          g_atomic_rc_box_acquire (relay),
                                          relay_local_released);

            /* relay->local owns the first reference until the local
             * transport lets go (which may happen during the dispatch). */
            relay->local = local;
            cp_http_exchange_local_set_peer (local, relay->remote_address,
                                             relay->peer_certificate);
            cp_http_exchange_ref (local);
            cp_http_server_dispatch_local (cp_rpc_server_get_http_server (relay->server), local);
            cp_http_exchange_unref (local);
          }
          break;
        case RELAY_CHUNK:
          if (relay->local != NULL)
            cp_http_exchange_local_push_body (relay->local, op->chunk);
          break;
        case RELAY_END:
          if (relay->local != NULL)
            cp_http_exchange_local_end_body (relay->local);
          break;
        case RELAY_CANCEL:
          if (relay->local != NULL)
            cp_http_exchange_local_cancel (relay->local);
          break;
        case RELAY_HEAD:
          g_assert_not_reached ();
        }
    }
}

/* ---- the worker: the connection's exchange ---- */

static void
relay_apply_worker (Relay  *relay,
                    GQueue *ops)
{
  CpHttpExchange *exchange = relay->exchange;
  RelayOp *first = g_queue_peek_head (ops);
  RelayOp *last = g_queue_peek_tail (ops);

  if (exchange == NULL || cp_http_exchange_is_finished (exchange))
    return;

  /* A whole answer without trailers: one response with Content-Length. */
  if (!relay->begun && first != NULL && first->kind == RELAY_HEAD &&
      last->kind == RELAY_END && last->headers == NULL)
    {
      g_autoptr(GByteArray) body = g_byte_array_new ();
      g_autoptr(GBytes) bytes = NULL;

      for (GList *l = ops->head; l != NULL; l = l->next)
        {
          RelayOp *op = l->data;

          if (op->kind == RELAY_CHUNK)
            g_byte_array_append (body, g_bytes_get_data (op->chunk, NULL),
                                 g_bytes_get_size (op->chunk));
        }
      if (body->len > 0)
        bytes = g_byte_array_free_to_bytes (g_steal_pointer (&body));
      relay->begun = TRUE;
      cp_http_exchange_respond (exchange, first->status, first->headers, bytes);
      return;
    }

  for (GList *l = ops->head; l != NULL; l = l->next)
    {
      RelayOp *op = l->data;

      switch (op->kind)
        {
        case RELAY_HEAD:
          relay->begun = TRUE;
          cp_http_exchange_begin_response (exchange, op->status, op->headers);
          break;
        case RELAY_CHUNK:
          cp_http_exchange_write (exchange, op->chunk);
          break;
        case RELAY_END:
          if (op->headers != NULL)
            cp_http_exchange_set_response_trailers (exchange, op->headers);
          cp_http_exchange_end_response (exchange);
          return;
        case RELAY_DISPATCH:
        case RELAY_CANCEL:
          g_assert_not_reached ();
        }
    }
}

static void
relay_body_chunk (CpHttpExchange *exchange,
                  GBytes         *chunk,
                  gpointer        user_data)
{
  RelayOp *op = relay_op_new (RELAY_CHUNK);

  op->chunk = g_bytes_ref (chunk);
  relay_post_one (&((Relay *) user_data)->to_home, op);
}

static void
relay_body_end (CpHttpExchange *exchange,
                gpointer        user_data)
{
  relay_post_one (&((Relay *) user_data)->to_home, relay_op_new (RELAY_END));
}

static void
relay_aborted (CpHttpExchange *exchange,
               const GError   *error,
               gpointer        user_data)
{
  relay_post_one (&((Relay *) user_data)->to_home, relay_op_new (RELAY_CANCEL));
}

static const CpHttpExchangeCallbacks relay_exchange_callbacks = {
  relay_body_chunk, relay_body_end, relay_aborted, NULL,
};

/* The transport let go of the relay (the exchange finished or was
 * aborted): drop the exchange, in its context. */
static void
relay_exchange_released (gpointer data)
{
  Relay *relay = data;

  g_clear_pointer (&relay->exchange, cp_http_exchange_unref);
  relay_unref (relay);
}

/* Library-internal (cp-rpc-server-private.h). */
void
cp_rpc_server_relay_home (CpRpcServer    *self,
                          CpHttpExchange *exchange)
{
  Relay *relay = g_atomic_rc_box_new0 (Relay);
  const char *query = cp_http_exchange_get_query (exchange);

  relay->server = g_object_ref (self);
  relay->exchange = cp_http_exchange_ref (exchange);
  relay->method = g_strdup (cp_http_exchange_get_method (exchange));
  relay->path_and_query = query != NULL
    ? g_strconcat (cp_http_exchange_get_path (exchange), "?", query, NULL)
    : g_strdup (cp_http_exchange_get_path (exchange));
  relay->headers = copy_headers (cp_http_exchange_get_request_headers (exchange),
                                 SOUP_MESSAGE_HEADERS_REQUEST);
  g_set_object (&relay->remote_address, cp_http_exchange_get_remote_address (exchange));
  g_set_object (&relay->peer_certificate, cp_http_exchange_get_peer_certificate (exchange));
  g_queue_init (&relay->pending);

  relay->to_home.relay = relay;
  relay->to_home.context = g_main_context_ref (cp_rpc_server_get_context (self));
  relay->to_home.apply = relay_apply_home;
  g_mutex_init (&relay->to_home.lock);
  relay->to_worker.relay = relay;
  relay->to_worker.context = g_main_context_ref (cp_http_exchange_get_context (exchange));
  relay->to_worker.apply = relay_apply_worker;
  g_mutex_init (&relay->to_worker.lock);

  /* The callbacks' reference is the one from g_atomic_rc_box_new0 (). */
  cp_http_exchange_set_callbacks (exchange, &relay_exchange_callbacks, relay,
                                  relay_exchange_released);
  relay_post_one (&relay->to_home, relay_op_new (RELAY_DISPATCH));
}

