// Entry point of the workflow bundle: every workflow the worker registers.
export { batchWorkflow } from './batch-workflow';
export { cleanupWorkflow } from './cleanup-workflow';
export { webhookWorkflow } from './webhook-workflow';
