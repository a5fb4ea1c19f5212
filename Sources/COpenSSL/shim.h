#ifndef DV_COPENSSL_SHIM_H
#define DV_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/crypto.h>
#endif
