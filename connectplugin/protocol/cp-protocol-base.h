/* cp-protocol-base.h: what the generated protocol headers stand on
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * protoc-gen-cp writes `#include <connectplugin.h>` into the headers it
 * generates for a project. The library's own generated headers
 * (connectplugin/protocol/NAME.cp.h, built with --cp_opt=base=cp-protocol-base.h)
 * cannot: the umbrella header includes them. They include this header
 * instead, which brings only the service layer's headers the generated code
 * needs. A generated protocol header is also complete on its own
 * (`#include <connectplugin/protocol/health.cp.h>` first compiles), so
 * included from outside the umbrella header this one opens the
 * "Only <connectplugin.h>" guard of the headers below for the time it
 * includes them.
 */
#pragma once

#if !defined(__CONNECTPLUGIN_H_INSIDE__) && !defined(CONNECTPLUGIN_COMPILATION)
#define __CONNECTPLUGIN_H_INSIDE__
#define CP_PROTOCOL_BASE_OPENED_GUARD
#endif

#include <gio/gio.h>
#include "cp-version-macros.h"
#include "cp-types.h"
#include "cp-message.h"
#include "cp-service-descriptor.h"
#include "cp-proxy.h"
#include "cp-skeleton.h"

#ifdef CP_PROTOCOL_BASE_OPENED_GUARD
#undef __CONNECTPLUGIN_H_INSIDE__
#undef CP_PROTOCOL_BASE_OPENED_GUARD
#endif
