throw new Error('cbor-extract stub: cbor-x decodes in JavaScript');
