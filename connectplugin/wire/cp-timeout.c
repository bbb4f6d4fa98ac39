/* placeholder: to be written */
#include <glib.h>
typedef int cp_placeholder_cp_timeout;
