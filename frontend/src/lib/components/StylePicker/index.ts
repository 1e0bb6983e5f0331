export { default } from "./StylePicker.svelte";
