throw new Error('node-aead-crypto stub: node:crypto provides AES-CCM/GCM');
