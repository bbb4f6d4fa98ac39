/* cp-plugin-protos.h: the generated classes of the plugin-system protos
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connectplugin.v1 and connectplugin.health.v1, compiled by protoc-gen-cp
 * (prefix Cp) into the build directory; see README.md for the names. The
 * generated headers need the service layer's base classes first.
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "cp-channel.h"
#include "cp-proxy.h"
#include "cp-skeleton.h"

#include "handshake.cp.h"
#include "broker.cp.h"
#include "lifecycle.cp.h"
#include "registry.cp.h"
#include "control.cp.h"
#include "identity.cp.h"
#include "health.cp.h"
