/* cp-proxy.h: base class of generated service proxies (client side)
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-call-options.h"
#include "cp-channel.h"
#include "cp-message.h"
#include "cp-request-stream.h"
#include "cp-response-stream.h"
#include "cp-service-descriptor.h"

G_BEGIN_DECLS

#define CP_TYPE_PROXY (cp_proxy_get_type ())

CP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (CpProxy, cp_proxy, CP, PROXY, GObject)

/**
 * CpProxyClass:
 * @parent_class: the parent class
 *
 * Generated subclasses bind the class to their service in class_init with
 * [method@ConnectPlugin.ProxyClass.set_descriptor].
 */
struct _CpProxyClass
{
  GObjectClass parent_class;

  /*< private >*/
  CpServiceDescriptor *descriptor;
  gpointer padding[8];
};

CP_AVAILABLE_IN_ALL
CpChannel           *cp_proxy_get_channel          (CpProxy             *proxy);
CP_AVAILABLE_IN_ALL
void                 cp_proxy_set_channel          (CpProxy             *proxy,
                                                    CpChannel           *channel);
CP_AVAILABLE_IN_ALL
CpServiceDescriptor *cp_proxy_get_descriptor       (CpProxy             *proxy);
CP_AVAILABLE_IN_ALL
void                 cp_proxy_class_set_descriptor (CpProxyClass        *klass,
                                                    CpServiceDescriptor *descriptor);

/* Calls by method name; generated code wraps them in typed functions. */
CP_AVAILABLE_IN_ALL
void                 cp_proxy_call_async           (CpProxy             *proxy,
                                                    const char          *method_name,
                                                    CpMessage           *request,
                                                    CpCallOptions       *options,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
CP_AVAILABLE_IN_ALL
CpMessage           *cp_proxy_call_finish          (CpProxy             *proxy,
                                                    GAsyncResult        *result,
                                                    GError             **error);
CP_AVAILABLE_IN_ALL
CpMessage           *cp_proxy_call_sync            (CpProxy             *proxy,
                                                    const char          *method_name,
                                                    CpMessage           *request,
                                                    CpCallOptions       *options,
                                                    GCancellable        *cancellable,
                                                    GError             **error);
CP_AVAILABLE_IN_ALL
CpResponseStream    *cp_proxy_call_server_stream   (CpProxy             *proxy,
                                                    const char          *method_name,
                                                    CpMessage           *request,
                                                    CpCallOptions       *options);
CP_AVAILABLE_IN_ALL
CpRequestStream     *cp_proxy_call_client_stream   (CpProxy             *proxy,
                                                    const char          *method_name,
                                                    CpCallOptions       *options);
CP_AVAILABLE_IN_ALL
CpRequestStream     *cp_proxy_call_bidi_stream     (CpProxy             *proxy,
                                                    const char          *method_name,
                                                    CpCallOptions       *options);

G_END_DECLS
