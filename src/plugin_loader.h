/* plugin_loader.h: plugins built out of tree as shared objects. */
#ifndef KPS_PLUGIN_LOADER_H
#define KPS_PLUGIN_LOADER_H

#include <stddef.h>

/* dlopens every *.so in dir (in name order), checks each descriptor and
 * registers it.  A file that fails is reported with its path and the
 * reason, and the others are still loaded.  Returns the number loaded, or
 * -1 when the directory cannot be read (reason in err). */
int kps__plugins_load_dir(const char *dir, int quiet_if_missing, char *err, size_t errlen);

/* Loads one shared object; 0, or -1 with the reason in err. */
int kps__plugin_load_file(const char *path, char *err, size_t errlen);

#endif
