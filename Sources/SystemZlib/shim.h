// The system zlib (Debian: zlib1g-dev), for the gzip and zip readers of FeedFormats.
#include <zlib.h>
