#ifndef DV_CCURL_H
#define DV_CCURL_H
#include <curl/curl.h>
#endif
