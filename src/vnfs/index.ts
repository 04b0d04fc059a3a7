/**
 * VNFS capsules: what other parts of provisiond use (the HTTP service, the registry's `node set vnfs`
 * check, the CLI). See capsule.ts for the folder layout and image.ts for the node image.
 */
export { currentImageSha, currentImages, vnfsExists, listVnfsNames, capsuleDir, vnfsRoot, readCapsuleConfig, IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR } from './capsule.js';
export type { CapsuleConfig } from './capsule.js';
export { ensureImage, buildImage, writeTreeImage, treeFingerprint, forgetImageChecks } from './image.js';
export type { ImageResult, BuildProgress } from './image.js';
export { readLocalImage, installImage } from './image-files.js';
export type { LocalImage, FetchedImage } from './image-files.js';
