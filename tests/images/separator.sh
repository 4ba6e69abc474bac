#!/bin/sh
# ct-separator: the response between the markers, with noise around it
echo "compiling..."
echo "{ this is not the response }"
echo "-----BEGIN CORRECTOMATIC RESPONSE-----"
echo '{"success":true,"grade":7.5,"comments":["separated","by markers"]}'
echo "-----END CORRECTOMATIC RESPONSE-----"
echo "cleaning up"
echo "done."
