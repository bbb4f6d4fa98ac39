/* cp-router-private.h: the router unit's internals
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "cp-broker-private.h"
#include "cp-router-path.h"

G_BEGIN_DECLS


G_END_DECLS
