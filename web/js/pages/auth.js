// Sign in and register.
import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { store } from '../store.js';

function field(id, label, attrs) {
  return [h('label', { for: id }, label), h('input', { id, name: id, required: true, ...attrs })];
}

export function loginPage(main) {
  const error = h('p', { class: 'error-text', role: 'alert' }, store.signOutReason || '');
  const submit = h('button', { class: 'primary', type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card form stack', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in'),
    ...field('email', 'Email', { type: 'email', autocomplete: 'email' }),
    ...field('password', 'Password', { type: 'password', autocomplete: 'current-password' }),
    error, submit,
    h('p', {}, 'New here? ', h('a', { href: '#/register' }, 'Create an account')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    error.textContent = '';
    try {
      const { token, user } = await api.post('/api/auth/login', { email: form.email.value, password: form.password.value });
      store.signIn(token, user);
      location.hash = '#/dashboard';
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  mount(main, form);
}

export function registerPage(main) {
  const error = h('p', { class: 'error-text', role: 'alert' });
  const submit = h('button', { class: 'primary', type: 'submit' }, 'Create account');
  const form = h('form', { class: 'card form stack', 'aria-labelledby': 'register-title' },
    h('h1', { id: 'register-title' }, 'Create an account'),
    ...field('name', 'Name', { autocomplete: 'name', maxlength: 100 }),
    ...field('email', 'Email', { type: 'email', autocomplete: 'email' }),
    ...field('password', 'Password (8 characters or more)', { type: 'password', autocomplete: 'new-password', minlength: 8 }),
    h('label', { for: 'role' }, 'I am'),
    h('select', { id: 'role', name: 'role' }, h('option', { value: 'student' }, 'a student'), h('option', { value: 'instructor' }, 'an instructor')),
    error, submit,
    h('p', {}, 'Have an account? ', h('a', { href: '#/login' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = '';
    try {
      const { token, user } = await api.post('/api/auth/register', {
        name: form.name.value, email: form.email.value, password: form.password.value, role: form.role.value,
      });
      store.signIn(token, user);
      location.hash = '#/dashboard';
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
  mount(main, form);
}
