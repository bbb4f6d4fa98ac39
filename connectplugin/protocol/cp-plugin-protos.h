/* cp-plugin-protos.h: the generated classes of the plugin-system protos
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * connectplugin.v1 and connectplugin.health.v1, compiled by protoc-gen-cp
 * (prefix Cp) in this folder; see plugin/README.md for the names. The
 * generated headers are installed under connectplugin/protocol/, apart from
 * a project's own generated headers, and each stands on its own
 * (cp-protocol-base.h).
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#error "Only <connectplugin.h> can be included directly."
#endif

#include "connectplugin/protocol/handshake.cp.h"
#include "connectplugin/protocol/broker.cp.h"
#include "connectplugin/protocol/lifecycle.cp.h"
#include "connectplugin/protocol/registry.cp.h"
#include "connectplugin/protocol/control.cp.h"
#include "connectplugin/protocol/identity.cp.h"
#include "connectplugin/protocol/health.cp.h"
