/* cp-types.h: forward declarations of connectplugin's public types
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every public header includes this one and only the few headers it needs
 * (never the umbrella connectplugin.h), so that a header can name a type of
 * another one without including it, and the include graph has no cycles
 * (libsoup's soup-types.h, GIO's giotypes.h). The G_DECLARE_*_TYPE() in each
 * type's own header repeats its typedef, which C11 allows.
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/* wire */
typedef struct _CpErrorDetail CpErrorDetail;

/* message */
typedef struct _CpMessage CpMessage;
typedef struct _CpEmpty CpEmpty;
typedef struct _CpStringValue CpStringValue;
typedef struct _CpBytesValue CpBytesValue;
typedef struct _CpInt32Value CpInt32Value;
typedef struct _CpInt64Value CpInt64Value;
typedef struct _CpBoolValue CpBoolValue;
typedef struct _CpAny CpAny;
typedef struct _CpStruct CpStruct;
typedef struct _CpValue CpValue;
typedef struct _CpListValue CpListValue;

/* rpc */
typedef struct _CpMethodInfo CpMethodInfo;
typedef struct _CpInvocation CpInvocation;
typedef struct _CpServerInterceptor CpServerInterceptor;
typedef struct _CpRpcServer CpRpcServer;
typedef struct _CpCallOptions CpCallOptions;
typedef struct _CpCircuitBreaker CpCircuitBreaker;
typedef struct _CpRetryPolicy CpRetryPolicy;
typedef struct _CpClientCall CpClientCall;
typedef struct _CpClientInterceptor CpClientInterceptor;
typedef struct _CpAuthProvider CpAuthProvider;
typedef struct _CpTokenAuthProvider CpTokenAuthProvider;
typedef struct _CpAuthInterceptor CpAuthInterceptor;
typedef struct _CpCredentialsInterceptor CpCredentialsInterceptor;
typedef struct _CpResponseStream CpResponseStream;
typedef struct _CpRequestStream CpRequestStream;
typedef struct _CpChannel CpChannel;
typedef struct _CpSpanContext CpSpanContext;
typedef struct _CpSpan CpSpan;

/* service */
typedef struct _CpServiceDescriptor CpServiceDescriptor;
typedef struct _CpProxy CpProxy;
typedef struct _CpSkeleton CpSkeleton;

/* plugin */
typedef struct _CpPlugin CpPlugin;
typedef struct _CpServer CpServer;
typedef struct _CpServiceWatch CpServiceWatch;

/* host */
typedef struct _CpDiscovery CpDiscovery;
typedef struct _CpStaticDiscovery CpStaticDiscovery;
typedef struct _CpProcessDiscovery CpProcessDiscovery;
typedef struct _CpInProcessDiscovery CpInProcessDiscovery;
typedef struct _CpHealthMonitor CpHealthMonitor;
typedef struct _CpClient CpClient;
typedef struct _CpPluginInstance CpPluginInstance;
typedef struct _CpBroker CpBroker;
typedef struct _CpDependencyGraph CpDependencyGraph;
typedef struct _CpDependencyImpact CpDependencyImpact;

G_END_DECLS
