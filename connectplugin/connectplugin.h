/* connectplugin.h: the connectplugin umbrella header
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define __CONNECTPLUGIN_H_INSIDE__

#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-enum-types.h"
#include "cp-error.h"
#include "cp-compression.h"
#include "cp-metadata.h"
#include "cp-codec.h"
#include "cp-message.h"
#include "cp-well-known.h"
#include "cp-method-info.h"
#include "cp-invocation.h"
#include "cp-server-interceptor.h"
#include "cp-rpc-server.h"
#include "cp-call-options.h"
#include "cp-circuit-breaker.h"
#include "cp-retry-policy.h"
#include "cp-client-call.h"
#include "cp-client-interceptor.h"
#include "cp-response-stream.h"
#include "cp-request-stream.h"
#include "cp-channel.h"
#include "cp-service-descriptor.h"
#include "cp-proxy.h"
#include "cp-skeleton.h"
#include "cp-plugin-constants.h"
#include "cp-plugin-protos.h"
#include "cp-plugin.h"
#include "cp-server.h"
#include "cp-service-watch.h"
#include "cp-host-enum-types.h"
#include "cp-discovery.h"
#include "cp-static-discovery.h"
#include "cp-process-discovery.h"
#include "cp-in-process-discovery.h"
#include "cp-health-monitor.h"
#include "cp-client.h"
#include "cp-plugin-instance.h"
#include "cp-broker.h"
#include "cp-dependency-graph.h"

#undef __CONNECTPLUGIN_H_INSIDE__
