/* fuzz-common.h: shared set-up of the wire fuzz targets
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Criticals and warnings (e.g. libsoup refusing a header) are bugs: make
 * them crash, like g_test_init() does. */
static inline void
fuzz_set_up (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_FATAL_MASK);
      g_once_init_leave (&once, 1);
    }
}
